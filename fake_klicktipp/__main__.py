"""Command line: ``python -m fake_klicktipp --host H --port N [--seed FILE] [--profile P] [--log-level L]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from fake_klicktipp.options import DEFAULT_PROFILE, PROFILES
from fake_klicktipp.server import serve


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m fake_klicktipp", description="Run the fake KlickTipp API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind; 0 picks a free one")
    parser.add_argument("--seed", type=Path, default=None, help="seed JSON file (default: the shipped seed)")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=DEFAULT_PROFILE,
        help="answer as documented (the spec) or as recorded from the real API; resets return to it"
        f" (default {DEFAULT_PROFILE})",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    args = parser.parse_args(argv)
    serve(host=args.host, port=args.port, seed=args.seed, log_level=args.log_level, profile=args.profile)


if __name__ == "__main__":
    main()
