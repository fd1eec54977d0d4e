"""The Starlette app: the CRM endpoints (``fake_crm.api``) and the ``/_fake/*`` control endpoints.

Two catch-all routes (control, API) hand every method to the fake's own routing below and in
``fake_crm.api``, which answer in each CRM's shapes (JSON compact, ASCII-escaped).

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
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response

from fake_crm.api import Reply, Request, handle_api
from fake_crm.state import CRMS, FakeCrmState, Fault
from ktsync.core.web import bytes_response, catch_all, json_response, read_body

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


class FakeCrmApp(Starlette):
    """The ASGI app around one ``FakeCrmState`` (``crm``; one event loop: no locks needed)."""

    def __init__(self, state: FakeCrmState | None = None) -> None:
        self.crm = state or FakeCrmState()
        routes = [
            catch_all(CONTROL_PREFIX + "{rest:path}", self._control),
            catch_all("/{path:path}", self._api),
        ]
        super().__init__(routes=routes)

    async def _control(self, request: HttpRequest) -> Response:
        raw = await read_body(request)
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return _response(Reply(400, {"error": "body is not JSON"}))
        return _response(handle_control(self.crm, request.method, request.scope["path"], body))

    async def _api(self, request: HttpRequest) -> Response:
        scope = request.scope
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        return _response(handle_api(self.crm, Request(scope["method"], scope["path"], query, headers)))


def _response(reply: Reply) -> Response:
    if reply.body is None:  # Zoho's 204: no body, no content type
        return bytes_response(reply.status, b"", content_type=None, headers=reply.headers)
    return json_response(reply.status, reply.body, reply.headers, ensure_ascii=True)
