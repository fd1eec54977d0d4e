"""Serve the fake CRM with uvicorn, one process, state in memory; prints a ready line when listening."""

from __future__ import annotations

import socket
import sys
from typing import Final

import uvicorn

from fake_crm.app import FakeCrmApp

READY_LINE: Final = "fake-crm listening on http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(READY_LINE.format(host=self.config.host, port=port), flush=True)


def serve(*, host: str = "127.0.0.1", port: int, log_level: str = "warning") -> None:
    """Run the fake until interrupted (blocking); port 0 picks a free port (see the ready line)."""
    config = uvicorn.Config(
        FakeCrmApp(),
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    server = _AnnouncingServer(config)
    server.run()
    if not server.started:
        sys.exit(f"fake-crm could not listen on {host}:{port}")
