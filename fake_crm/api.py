"""The three CRMs' contact-read endpoints, answered from the seeded records in each CRM's own shape.

    GET /crm/v3/objects/contacts/{id}?properties=a,b&archived=false     HubSpot (Bearer token)
    GET /api/v1/contact/{id}/?_fields=…   GET /api/v1/lead/{id}/?_fields=…  Close (basic auth, key as user)
    GET /crm/v{N}/Contacts/{id}?fields=…                                  Zoho (Zoho-oauthtoken)

Each request passes, in order: routing, a queued fault (``state.take_fault``), the credential check.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fake_crm.state import CLOSE_API_KEY, HUBSPOT_TOKEN, ZOHO_TOKEN, FakeCrmState, Fault

HUBSPOT_DEFAULT_PROPERTIES: Final = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
_STAMP: Final = "2026-11-22T10:00:00.000Z"


@dataclass(frozen=True)
class Request:
    """A decoded API request (header names lower-cased; each query name with all its values)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def values(self, name: str) -> list[str]:
        """Every value of a query parameter, comma-separated lists split."""
        return [part for value in self.query.get(name, []) for part in value.split(",") if part]


@dataclass(frozen=True)
class Reply:
    """A JSON reply; ``body=None`` sends an empty body (Zoho's 204)."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[FakeCrmState, Request, re.Match[str]], Reply]


def _hubspot_error(status: int, message: str, category: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return Reply(status, {**body, **extra})


def _close_error(status: int, message: str) -> Reply:
    if status == 429:
        return Reply(
            429, {"error": {"message": message, "rate_reset": 1.0, "rate_limit": 20, "rate_window": 1}}
        )
    return Reply(status, {"error": message})


def _zoho_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "details": {}, "message": message, "status": "error"})


_ZOHO_ERRORS: Final = {
    401: ("INVALID_TOKEN", "invalid oauth token"),
    403: ("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL"),
    429: ("TOO_MANY_REQUESTS", "too many requests"),
}


def error_reply(crm: str, status: int) -> Reply:
    """The body this CRM typically sends with ``status``."""
    if crm == "close":
        message = "API call count exceeded for this 1 second window" if status == 429 else "error"
        return _close_error(status, message)
    if crm == "zoho":
        code, message = _ZOHO_ERRORS.get(status, ("INTERNAL_ERROR", "internal error"))
        return _zoho_error(status, code, message)
    if status == 429:
        return _hubspot_error(
            429,
            "You have reached your ten_secondly_rolling limit.",
            "RATE_LIMITS",
            errorType="RATE_LIMIT",
            policyName="TEN_SECONDLY_ROLLING",
        )
    if status == 401:
        return _hubspot_error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
    return _hubspot_error(status, "error", "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")


def fault_reply(crm: str, fault: Fault) -> Reply:
    default = error_reply(crm, fault.status)
    body = fault.body if fault.body is not None else default.body
    return Reply(fault.status, body, tuple(fault.headers.items()))


# -- credentials -----------------------------------------------------------------------------------


def authorized(crm: str, headers: Mapping[str, str]) -> bool:
    header = headers.get("authorization", "")
    if crm == "hubspot":
        return header == f"Bearer {HUBSPOT_TOKEN}"
    if crm == "zoho":
        return header == f"Zoho-oauthtoken {ZOHO_TOKEN}"
    scheme, _, encoded = header.partition(" ")
    try:
        user = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return False
    return scheme.lower() == "basic" and user == CLOSE_API_KEY


def _unauthorized(crm: str) -> Reply:
    if crm == "close":
        return _close_error(401, "The API key is not valid.")
    return error_reply(crm, 401)


# -- the endpoints ---------------------------------------------------------------------------------


def _only(record: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: record.get(k) for k in fields} if fields else dict(record)


def hubspot_contact(state: FakeCrmState, request: Request, match: re.Match[str]) -> Reply:
    record = state.get("hubspot", "contacts", match.group(1))
    archived = request.values("archived") == ["true"]
    if record is None or bool(record.get("archived", False)) != archived:
        return Reply(404)  # HubSpot answers a missing (or archived) object with an empty 404
    wanted = request.values("properties") or list(HUBSPOT_DEFAULT_PROPERTIES)
    stored: Mapping[str, Any] = record.get("properties", {})
    properties = {name: stored.get(name) for name in wanted}
    properties.update(hs_object_id=str(record["id"]), createdate=_STAMP, lastmodifieddate=_STAMP)
    return Reply(
        200,
        {
            "id": str(record["id"]),
            "properties": properties,
            "createdAt": record.get("createdAt", _STAMP),
            "updatedAt": record.get("updatedAt", _STAMP),
            "archived": archived,
        },
    )


def close_object(kind: str) -> Handler:
    def handle(state: FakeCrmState, request: Request, match: re.Match[str]) -> Reply:
        record = state.get("close", kind, match.group(1))
        if record is None:
            return _close_error(404, f"Empty query: {kind[:-1]} matching query does not exist.")
        return Reply(200, _only(record, request.values("_fields")))

    return handle


def zoho_contact(state: FakeCrmState, request: Request, match: re.Match[str]) -> Reply:
    record = state.get("zoho", "contacts", match.group(2))
    if record is None:
        return Reply(204)
    fields = request.values("fields")
    return Reply(200, {"data": [_only(record, ["id", *fields] if fields else [])]})


ROUTES: Final[tuple[tuple[re.Pattern[str], str, Handler], ...]] = (
    (re.compile(r"/crm/v3/objects/contacts/([^/]+)"), "hubspot", hubspot_contact),
    (re.compile(r"/api/v1/contact/([^/]+)/"), "close", close_object("contacts")),
    (re.compile(r"/api/v1/lead/([^/]+)/"), "close", close_object("leads")),
    (re.compile(r"/crm/v(\d+(?:\.\d+)?)/Contacts/([^/]+)"), "zoho", zoho_contact),
)


def handle_api(state: FakeCrmState, request: Request) -> Reply:
    """Answer one API request and log it (never its credentials: only whether they were right)."""
    crm, reply, auth_ok = None, Reply(404, {"error": "no such endpoint in the fake CRM"}), None
    for pattern, name, handler in ROUTES:
        match = pattern.fullmatch(request.path)
        if match is None:
            continue
        crm = name
        if request.method != "GET":
            reply = Reply(405, {"error": "method not allowed"})
            break
        auth_ok = authorized(name, request.headers)
        fault = state.take_fault(name, request.path)
        if fault is not None:
            reply = fault_reply(name, fault)
        elif not auth_ok:
            reply = _unauthorized(name)
        else:
            reply = handler(state, request, match)
        break
    state.record(
        {
            "crm": crm,
            "method": request.method,
            "path": request.path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in request.query.items()},
            "authorized": auth_ok,
            "status": reply.status,
        }
    )
    return reply
