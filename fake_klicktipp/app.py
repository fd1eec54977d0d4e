"""The raw ASGI application: read the body, route to the control or the API side, write JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fake_klicktipp.api import handle_api
from fake_klicktipp.control import CONTROL_PREFIX, handle_control
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.wire import Reply

Scope = MutableMapping[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def encode(reply: Reply) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The response body and headers for a reply."""
    if reply.raw is not None:
        payload = reply.raw
    else:
        payload = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(payload)).encode("ascii")),
    ]
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers)
    return payload, headers


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class FakeApp:
    """ASGI entry point around one ``FakeKlickTipp``."""

    def __init__(self, fake: FakeKlickTipp) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            reply = handle_control(self.fake, scope["method"], path, scope.get("query_string", b""), body)
        else:
            reply = await handle_api(self.fake, scope, body)
        payload, headers = encode(reply)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
