"""The ASGI shell: read the body (bounded), run the receiver in a thread pool, write JSON.

The event loop only moves bytes; verification, mapping, Redis and the broker run on the pool's
threads (the receiver's work is blocking). ``GET /healthz`` is answered on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import Executor
from typing import Any

from ktsync.producers.webhooks.receiver import Receiver, Response
from ktsync.producers.webhooks.routes import Request

Scope = MutableMapping[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 2 * 1024 * 1024  # HubSpot batches of 100 events are ~30 KB; beyond this, 413
HEALTH_PATH = "/healthz"


class BodyTooLarge(Exception):
    pass


class WebhookApp:
    """ASGI entry point around one :class:`Receiver` and the executor that runs it."""

    def __init__(self, receiver: Receiver, executor: Executor, *, max_body: int = MAX_BODY_BYTES) -> None:
        self._receiver = receiver
        self._executor = executor
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == HEALTH_PATH:
            healthy = Response(200, {"status": "ok"})
            await _send(send, healthy if scope["method"] == "GET" else _not_allowed("GET"))
            return
        try:
            body = await _read_body(receive, self._max_body)
        except BodyTooLarge:
            await _send(send, Response(413, {"error": f"body larger than {self._max_body} bytes"}))
            return
        request = _request(scope, body)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._executor, self._receiver.handle, request)
        await _send(send, response)


def _request(scope: Scope, body: bytes) -> Request:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    server = scope.get("server") or ("localhost", None)
    fallback_host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    return Request(
        method=scope["method"],
        path=scope["path"],
        raw_path=raw_path.decode("latin-1"),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=body,
        scheme=scope.get("scheme", "http"),
        host=headers.get("host") or fallback_host,
    )


def _not_allowed(allowed: str) -> Response:
    return Response(405, {"error": "method not allowed"}, (("allow", allowed),))


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: Response) -> None:
    payload = json.dumps(response.body, separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
