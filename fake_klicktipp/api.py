"""One Management API request from start to finish: faults, auth, decoding, handler, error shape, log.

A request works on the data of the account it authenticated as, spends that account's rate-limit
bucket and is logged with its name (``account``). A login, not authenticated yet, spends the bucket
of unauthenticated callers but is logged under the account it logged into.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fake_klicktipp.auth import Identity, session_cookie
from fake_klicktipp.encoding import BodyError, parse_body, parse_query
from fake_klicktipp.errors import FakeError, Msg, Refused
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.requestlog import LoggedRequest, redact
from fake_klicktipp.routing import Match, Operation, match
from fake_klicktipp.shapes import error_reply, fault_reply, method_not_allowed
from fake_klicktipp.wire import ApiRequest, Reply

GARBLED: Final = Reply(
    200,
    None,
    raw=b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>",
    content_type="text/html; charset=utf-8",
)
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_WANTED_HEADERS: Final = frozenset({b"cookie", b"x-un", b"x-ci", b"content-type"})
LOGIN_OPERATION: Final = "api.account.login"


def _miss(fake: FakeKlickTipp, route: Match, method: str) -> Reply:
    if route.allowed:
        return method_not_allowed(method, route.path, route.allowed)
    return error_reply(Refused(404, Msg.NO_ROUTE), fake.options)


def _run(fake: FakeKlickTipp, operation: Operation, req: ApiRequest) -> Reply:
    try:
        if not operation.public and req.identity is None:
            raise Refused(fake.options.auth_failure_status, Msg.ACCESS_DENIED)
        return operation.handler(fake.view(None if req.identity is None else req.identity.username), req)
    except FakeError as err:
        return error_reply(err, fake.options)


@dataclass(frozen=True)
class _Caller:
    """Who sent a request (live session id, authenticated identity) and the body's content type."""

    sessid: str | None
    identity: Identity | None
    content_type: str


def _identify(fake: FakeKlickTipp, scope: Mapping[str, Any]) -> _Caller:
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _WANTED_HEADERS
    }
    ttl = fake.faults.settings.session_ttl
    session = fake.sessions.lookup(session_cookie(headers.get("cookie", "")), now=time.monotonic(), ttl=ttl)
    content_type = headers.get("content-type", "")
    if session is not None:
        return _Caller(session.sessid, Identity(username=session.username, via="session"), content_type)
    return _Caller(None, fake.credentials.partner(headers), content_type)


def _answer(
    fake: FakeKlickTipp, route: Match, scope: Mapping[str, Any], body: bytes, caller: _Caller
) -> tuple[Reply, dict[str, Any], dict[str, Any] | None]:
    """The reply with the decoded query and body (for the log) of a request that got past the faults."""
    if route.operation is None:
        return _miss(fake, route, scope["method"]), {}, None
    try:
        query = parse_query(scope.get("query_string", b""))
        parsed = parse_body(caller.content_type, body) if scope["method"] in _BODY_METHODS else {}
    except BodyError:
        return error_reply(Refused(406, Msg.UNPARSEABLE_BODY), fake.options), {}, None
    request = ApiRequest(route.param, query, parsed, caller.identity, caller.sessid)
    return _run(fake, route.operation, request), query, parsed


def _logged_account(
    account: str | None, route: Match, reply: Reply, parsed: dict[str, Any] | None
) -> str | None:
    """The account a request was for: its caller's, or for a successful login the one it logged into."""
    if account is not None or route.operation is None or route.operation.id != LOGIN_OPERATION:
        return account
    username = (parsed or {}).get("username")
    return username if reply.status == 200 and isinstance(username, str) else None


async def handle_api(fake: FakeKlickTipp, scope: Mapping[str, Any], body: bytes) -> Reply:
    """Answer one API request and record it in the request log."""
    arrived = time.time()
    if fake.faults.settings.latency_ms:
        await asyncio.sleep(fake.faults.settings.latency_ms / 1000.0)
    caller = _identify(fake, scope)
    account = caller.identity.username if caller.identity else None
    route = match(scope["method"], scope["path"])
    injected = fake.faults.before(account or "", time.monotonic())
    query: dict[str, Any] = {}
    parsed: dict[str, Any] | None = None
    if injected is not None:
        reply = fault_reply(injected, fake.options)
    else:
        reply, query, parsed = _answer(fake, route, scope, body, caller)
        if fake.faults.garble():
            reply = GARBLED
    operation = None if route.operation is None else route.operation.id
    account = _logged_account(account, route, reply, parsed)
    entry = LoggedRequest(
        arrived, scope["method"], scope["path"], operation, reply.status, account, redact(parsed), query
    )
    fake.log.record(entry)
    return reply
