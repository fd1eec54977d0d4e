"""Command line: ``python -m fake_crm --port N [--host H] [--log-level L]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fake_crm.server import serve


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fake_crm", description="Run the fake CRM APIs (tests only)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind; 0 picks a free one")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
