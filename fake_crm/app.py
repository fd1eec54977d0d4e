"""The ASGI application: the CRM endpoints (``fake_crm.api``) and the ``/_fake/*`` control endpoints.

GET    /_fake/health                      {"status": "ok"}
POST   /_fake/reset                       forget records, faults and the request log
POST   /_fake/contacts/{crm}              {"contacts": [...], "leads": [...]} in the CRM's own shape,
                                          each with an "id" (leads: Close only); replaces by id
DELETE /_fake/contacts/{crm}/{id}         remove a contact
GET    /_fake/requests                    {"requests": [{crm, method, path, query, authorized, status, at}]}
DELETE /_fake/requests                    empty the log
GET    /_fake/faults, DELETE /_fake/faults
POST   /_fake/faults                      {"status": 429, "count": 2, "crm": "hubspot",
                                           "headers": {"Retry-After": "1"}, "body": null (the CRM's usual)}
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

from fake_crm.api import Reply, Request, handle_api
from fake_crm.state import CRMS, FakeCrmState, Fault

Scope = MutableMapping[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PREFIX: Final = "/_fake/"
_CONTACTS = re.compile(r"/_fake/contacts/([a-z]+)(?:/([^/]+))?")


def _seed(state: FakeCrmState, crm: str, body: Any) -> Reply:
    if crm not in CRMS or not isinstance(body, dict):
        return Reply(400, {"error": f"POST a JSON object to /_fake/contacts/{{{'|'.join(CRMS)}}}"})
    counts: dict[str, int] = {}
    for kind in ("contacts", "leads"):
        items = body.get(kind, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            return Reply(400, {"error": f"{kind}: a list of objects, each with an 'id'"})
        counts[kind] = state.put(crm, kind, items)
    return Reply(200, counts)


def _add_fault(state: FakeCrmState, body: Any) -> Reply:
    if not isinstance(body, dict) or not isinstance(body.get("status"), int):
        return Reply(400, {"error": "a JSON object with an integer 'status'"})
    crm, path = body.get("crm"), body.get("path")
    if crm is not None and crm not in CRMS:
        return Reply(400, {"error": f"crm: one of {', '.join(CRMS)} or null"})
    if path is not None and not isinstance(path, str):
        return Reply(400, {"error": "path: a path prefix or null"})
    fault = Fault(
        status=body["status"],
        remaining=int(body.get("count", 1)),
        crm=crm,
        path=path,
        headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
        body=body.get("body"),
    )
    state.faults.append(fault)
    return Reply(200, {"faults": [f.to_dict() for f in state.faults]})


def handle_control(state: FakeCrmState, method: str, path: str, body: Any) -> Reply:
    """Answer one ``/_fake/*`` request."""
    contacts = _CONTACTS.fullmatch(path)
    if contacts is not None and method == "POST" and contacts.group(2) is None:
        return _seed(state, contacts.group(1), body)
    if contacts is not None and method == "DELETE" and contacts.group(2) is not None:
        return Reply(200, {"removed": state.remove(contacts.group(1), "contacts", contacts.group(2))})
    route = (method, path)
    if route == ("GET", "/_fake/health"):
        return Reply(200, {"status": "ok"})
    if route == ("POST", "/_fake/reset"):
        state.reset()
        return Reply(200, {"reset": True})
    if route == ("GET", "/_fake/requests"):
        return Reply(200, {"requests": list(state.log)})
    if route == ("DELETE", "/_fake/requests"):
        state.log.clear()
        return Reply(200, {"cleared": True})
    if route == ("GET", "/_fake/faults"):
        return Reply(200, {"faults": [f.to_dict() for f in state.faults]})
    if route == ("DELETE", "/_fake/faults"):
        state.faults.clear()
        return Reply(200, {"faults": []})
    if route == ("POST", "/_fake/faults"):
        return _add_fault(state, body)
    return Reply(404, {"error": f"no control endpoint {method} {path}"})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class FakeCrmApp:
    """ASGI entry point around one ``FakeCrmState`` (one event loop: no locks needed)."""

    def __init__(self, state: FakeCrmState | None = None) -> None:
        self.state = state or FakeCrmState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(CONTROL_PREFIX):
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                reply = Reply(400, {"error": "body is not JSON"})
            else:
                reply = handle_control(self.state, method, path, body)
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            reply = handle_api(self.state, Request(method, path, query, headers))
        await _send(send, reply)


async def _send(send: Send, reply: Reply) -> None:
    payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
    headers = [(b"content-length", str(len(payload)).encode("ascii"))]
    if reply.body is not None:
        headers.append((b"content-type", b"application/json"))
    headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
