"""Serve the fake KlickTipp (``ktsync.core.web``: uvicorn with httptools + uvloop), one process, state in memory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import uvicorn

from fake_klicktipp.app import FakeApp
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.options import DEFAULT_PROFILE, Profile
from fake_klicktipp.seed import read_seed
from ktsync.core.web import serve as serve_app
from ktsync.core.web import uvicorn_config

READY_LINE: Final = "fake-klicktipp listening on http://{host}:{port}"


def build_app(*, seed: Path | None, profile: Profile = DEFAULT_PROFILE) -> FakeApp:
    """A fresh fake on ``seed`` (default: the shipped seed), answering as ``profile``."""
    return FakeApp(FakeKlickTipp(read_seed(seed), profile))


def build_config(
    *, host: str, port: int, seed: Path | None, log_level: str, profile: Profile = DEFAULT_PROFILE
) -> uvicorn.Config:
    """The uvicorn config for a fresh fake (port 0 picks a free port, printed in the ready line)."""
    return uvicorn_config(build_app(seed=seed, profile=profile), host=host, port=port, log_level=log_level)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int,
    seed: Path | None = None,
    log_level: str = "warning",
    profile: Profile = DEFAULT_PROFILE,
) -> None:
    """Run the fake until interrupted (blocking); prints the ready line to stdout when listening."""
    app = build_app(seed=seed, profile=profile)
    if not serve_app(app, host=host, port=port, ready_line=READY_LINE, log_level=log_level):
        sys.exit(f"fake-klicktipp could not listen on {host}:{port}")
