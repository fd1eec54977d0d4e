"""One web stack for every HTTP service: Starlette apps served by uvicorn, a ready line, JSON answers.

The webhook receiver, the operator console and the two fakes (KlickTipp, CRM) all serve through
here, so the plumbing exists once::

    uvicorn_config(app, host=, port=, log_level=)   httptools + uvloop when installed, no access log,
                                                    no ``server`` header, 75 s keep-alive, lifespan
                                                    "on" for a Starlette app (it speaks the protocol)
    AnnouncingServer(config, ready_line)            prints ``ready_line.format(host=, port=)`` once
                                                    the socket accepts (port 0: the port it got)
    serve(app, host=, port=, ready_line=)           both, blocking; whether the server started
    read_body(request, limit)                       the body, or ``BodyTooLarge`` past ``limit``
    json_response / bytes_response                  a finished answer with exact headers
    catch_all(pattern, handler)                     a route passing every method to ``handler``
                                                    (the services route by their own tables)
    in_thread(config, name)                         a server in a thread of this process (tests,
                                                    benchmarks): its base URL while it listens

A caller that cannot listen gets ``False`` from :func:`serve` and exits with its own message.
"""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG

from ktsync.core.errors import KtsyncError

__all__ = [
    "DEFAULT_GRACEFUL_SECONDS",
    "DEFAULT_KEEP_ALIVE_SECONDS",
    "UVICORN_LOG_CONFIG",
    "AnnouncingServer",
    "BodyTooLarge",
    "bytes_response",
    "catch_all",
    "in_thread",
    "json_response",
    "read_body",
    "serve",
    "uvicorn_config",
]

DEFAULT_GRACEFUL_SECONDS: Final = 2.0  # open requests get this long to finish on shutdown
DEFAULT_KEEP_ALIVE_SECONDS: Final = 75  # above the usual 60 s of client pools: the client closes first
UVICORN_LOG_CONFIG: Final[dict[str, Any]] = LOGGING_CONFIG  # uvicorn's own; None keeps the process's
JSON_TYPE: Final = "application/json"
Lifespan = Literal["on", "off"]
Handler = Callable[[Request], Awaitable[Response]]


class BodyTooLarge(KtsyncError):
    """A request body longer than the service accepts (answer 413); ``limit`` is the bound in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints ``ready_line`` once its socket accepts connections.

    The line is formatted with ``host`` (the configured one) and ``port`` (the bound one, so port 0
    shows the port the system picked); callers' test helpers wait for it on stdout.
    """

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(self.ready_line.format(host=self.config.host, port=port), flush=True)


def _fastest(module: str) -> str:
    return module if importlib.util.find_spec(module) is not None else "auto"


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    graceful: float = DEFAULT_GRACEFUL_SECONDS,
    log_config: Any = UVICORN_LOG_CONFIG,
    lifespan: Lifespan | None = None,
) -> uvicorn.Config:
    """The uvicorn config every service uses (port 0 picks a free port).

    ``lifespan`` defaults to "on" for a Starlette app (its startup and shutdown hooks run) and "off"
    for any other ASGI app; ``log_config=None`` leaves the process's logging in charge.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_fastest("uvloop"),
        http=_fastest("httptools"),
        lifespan=lifespan or ("on" if isinstance(app, Starlette) else "off"),
        access_log=False,
        log_level=log_level,
        log_config=log_config,
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=math.ceil(graceful),  # uvicorn takes whole seconds
        server_header=False,
    )


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    ready_line: str,
    log_level: str = "warning",
    graceful: float = DEFAULT_GRACEFUL_SECONDS,
    log_config: Any = UVICORN_LOG_CONFIG,
) -> bool:
    """Serve ``app`` until interrupted (blocking), printing ``ready_line`` once listening.

    Returns whether the server started (False: it could not listen, e.g. the port was taken, or the
    app's startup failed; uvicorn has logged why).
    """
    config = uvicorn_config(
        app, host=host, port=port, log_level=log_level, graceful=graceful, log_config=log_config
    )
    server = AnnouncingServer(config, ready_line)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind or the app's startup fails
        if server.started:
            raise
        return False
    return bool(server.started)


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The whole request body; ``BodyTooLarge`` as soon as it passes ``limit`` bytes (the rest unread).

    A client that disconnects first raises Starlette's ``ClientDisconnect``.
    """
    if limit is None:
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def bytes_response(
    status: int, payload: bytes, *, content_type: str | None, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """An answer with exactly these headers: ``content-type`` (when given), ``content-length``, then
    ``headers`` in order (names may repeat, e.g. ``set-cookie``)."""
    response = Response(payload, status)
    raw = [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]
    raw.append((b"content-length", str(len(payload)).encode("ascii")))
    raw.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    response.raw_headers = raw
    return response


def json_response(
    status: int, body: Any, headers: Iterable[tuple[str, str]] = (), *, ensure_ascii: bool = False
) -> Response:
    """``body`` as compact JSON (UTF-8, unless ``ensure_ascii`` escapes everything past ASCII)."""
    payload = json.dumps(body, ensure_ascii=ensure_ascii, separators=(",", ":")).encode("utf-8")
    return bytes_response(status, payload, content_type=JSON_TYPE, headers=headers)


class _EveryMethod:
    """A request handler as an ASGI app: a ``Route`` to an app, unlike one to a function, does not
    limit the methods (a function route allows GET and HEAD unless told otherwise)."""

    def __init__(self, handler: Handler) -> None:
        self._app = request_response(handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def catch_all(pattern: str, handler: Handler) -> Route:
    """A route for ``pattern`` (e.g. ``"/{path:path}"``: every path) that hands ``handler`` every method;
    the handler answers a wrong one itself (the fakes' 405 bodies are part of what they imitate)."""
    return Route(pattern, _EveryMethod(handler))


THREAD_START_TIMEOUT = 10.0


@contextmanager
def in_thread(config: uvicorn.Config | uvicorn.Server, name: str) -> Iterator[str]:
    """The base URL while the server (of ``config``; port 0: a free one) listens in a daemon thread of
    this process; stopped afterwards. For tests and benchmarks that need real HTTP on loopback."""
    server = config if isinstance(config, uvicorn.Server) else uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + THREAD_START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{server.config.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
