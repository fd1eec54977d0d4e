"""Serve the fake CRM (``ktsync.core.web``: uvicorn), one process, state in memory; prints a ready line."""

from __future__ import annotations

import sys
from typing import Final

from fake_crm.app import FakeCrmApp
from ktsync.core.web import serve as serve_app

READY_LINE: Final = "fake-crm listening on http://{host}:{port}"


def serve(*, host: str = "127.0.0.1", port: int, log_level: str = "warning") -> None:
    """Run the fake until interrupted (blocking); port 0 picks a free port (see the ready line)."""
    if not serve_app(FakeCrmApp(), host=host, port=port, ready_line=READY_LINE, log_level=log_level):
        sys.exit(f"fake-crm could not listen on {host}:{port}")
