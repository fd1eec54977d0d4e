"""Serve the fake KlickTipp with uvicorn (httptools + uvloop), one process, state in memory."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from fake_klicktipp.app import FakeApp
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.options import DEFAULT_PROFILE, Profile
from fake_klicktipp.seed import read_seed

READY_LINE = "fake-klicktipp listening on http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints the ready line once its socket accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        print(READY_LINE.format(host=self.config.host, port=port), flush=True)


def _fastest(module: str, choice: str) -> str:
    return choice if importlib.util.find_spec(module) is not None else "auto"


def build_config(
    *, host: str, port: int, seed: Path | None, log_level: str, profile: Profile = DEFAULT_PROFILE
) -> Any:
    """The uvicorn config for a fresh fake (port 0 picks a free port, printed in the ready line)."""
    app = FakeApp(FakeKlickTipp(read_seed(seed), profile))
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_fastest("uvloop", "uvloop"),
        http=_fastest("httptools", "httptools"),
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        server_header=False,
    )


def serve(
    *,
    host: str = "127.0.0.1",
    port: int,
    seed: Path | None = None,
    log_level: str = "warning",
    profile: Profile = DEFAULT_PROFILE,
) -> None:
    """Run the fake until interrupted (blocking); prints the ready line to stdout when listening."""
    config = build_config(host=host, port=port, seed=seed, log_level=log_level, profile=profile)
    server = _AnnouncingServer(config)
    server.run()
    if not server.started:
        sys.exit(f"fake-klicktipp could not listen on {host}:{port}")
