"""The Starlette shell: read the body (bounded), run the receiver in a thread pool, answer JSON.

The event loop only moves bytes; verification, mapping, Redis and the broker run on the pool's
threads (the receiver's work is blocking). ``GET /healthz`` is answered on the loop; a body over
``max_body`` bytes gets 413 before the rest of it is read. The receiver's own routes table decides
everything else (one catch-all route hands it every path and method).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from ktsync.core.web import BodyTooLarge, catch_all, json_response, read_body
from ktsync.producers.webhooks.receiver import Receiver, Response
from ktsync.producers.webhooks.routes import Request

__all__ = ["HEALTH_PATH", "MAX_BODY_BYTES", "BodyTooLarge", "WebhookApp"]

MAX_BODY_BYTES = 2 * 1024 * 1024  # HubSpot batches of 100 events are ~30 KB; beyond this, 413
HEALTH_PATH = "/healthz"


class WebhookApp(Starlette):
    """The ASGI app around one :class:`Receiver` and the executor that runs it."""

    def __init__(self, receiver: Receiver, executor: Executor, *, max_body: int = MAX_BODY_BYTES) -> None:
        self._receiver = receiver
        self._executor = executor
        self._max_body = max_body
        super().__init__(routes=[catch_all(HEALTH_PATH, _health), catch_all("/{path:path}", self._webhook)])

    async def _webhook(self, http: HttpRequest) -> HttpResponse:
        try:
            body = await read_body(http, self._max_body)
        except BodyTooLarge as exc:
            return _answer(Response(413, {"error": f"body larger than {exc.limit} bytes"}))
        request = _request(http.scope, body)
        loop = asyncio.get_running_loop()
        return _answer(await loop.run_in_executor(self._executor, self._receiver.handle, request))


async def _health(http: HttpRequest) -> HttpResponse:
    if http.method != "GET":
        return _answer(Response(405, {"error": "method not allowed"}, (("allow", "GET"),)))
    return _answer(Response(200, {"status": "ok"}))


def _answer(response: Response) -> HttpResponse:
    return json_response(response.status, response.body, response.headers, ensure_ascii=True)


def _request(scope: Mapping[str, Any], body: bytes) -> Request:
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
