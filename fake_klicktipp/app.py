"""The Starlette app: one catch-all route to the ``/_fake/*`` control side or the API side.

Starlette parses the request and sends the answer; what a path and method mean stays the fake's own
(``fake_klicktipp.routing``: the 22 operations, ``.json`` suffixes, 405 with the allowed methods,
and ``fake_klicktipp.control``), so every path and method reaches those tables unfiltered.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from fake_klicktipp.api import handle_api
from fake_klicktipp.control import CONTROL_PREFIX, handle_control
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.wire import Reply
from ktsync.core.web import bytes_response, catch_all, json_response, read_body


def response(reply: Reply) -> Response:
    """The answer for a reply: its raw bytes, else its body as compact UTF-8 JSON."""
    if reply.raw is not None:
        return bytes_response(reply.status, reply.raw, content_type=reply.content_type, headers=reply.headers)
    return json_response(reply.status, reply.body, reply.headers)


class FakeApp(Starlette):
    """The ASGI app around one ``FakeKlickTipp``: one route, no middleware of its own (it carries every
    benchmark; a second route for ``/_fake/*`` would cost every API call one more match)."""

    def __init__(self, fake: FakeKlickTipp) -> None:
        self.fake = fake
        super().__init__(routes=[catch_all("/{path:path}", self._answer)])

    async def _answer(self, request: Request) -> Response:
        scope = request.scope
        body = await read_body(request)
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            return response(handle_control(self.fake, scope["method"], path, scope["query_string"], body))
        return response(await handle_api(self.fake, scope, body))
