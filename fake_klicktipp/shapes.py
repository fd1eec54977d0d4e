"""How refusals, wrong methods and injected faults become replies, in the shapes the options choose.

The documented shapes are the spec's; the recorded ones are KLICKTIPP_API.md §11 byte for byte:
raw, not-JSON ``[text]`` bodies (still labelled ``application/json``, as the real server does),
empty bodies, and other statuses or codes for the same refusal.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fake_klicktipp.errors import (
    ContactUnsubscribed,
    EmailRequired,
    FakeError,
    FieldRejected,
    MissingArgument,
    Refused,
    Rejected,
    RetrieveMiss,
    SearchMiss,
    UnknownTag,
)
from fake_klicktipp.faults import Injected
from fake_klicktipp.options import Options
from fake_klicktipp.wire import Reply

# The real server routes every request to its internal host, and names that host in a 405.
INTERNAL_API_URL: Final = "https://api-internal.klicktipp.com/api"
_INJECTED_TEXT: Final = {429: "Too Many Requests", 503: "Service Unavailable"}


def raw_reply(status: int, payload: bytes, *headers: tuple[str, str]) -> Reply:
    """A reply whose body is ``payload`` as is (empty, or text that is not JSON)."""
    return Reply(status, None, headers, raw=payload)


def _refused(err: Refused, options: Options) -> Reply:
    text = err.msg.text(german=options.german, params=err.params)
    if isinstance(err, RetrieveMiss) and options.empty_retrieve_miss:
        return raw_reply(err.status, b"")
    raw = (isinstance(err, MissingArgument) and options.raw_missing_argument) or (
        isinstance(err, SearchMiss) and options.raw_search_miss
    )
    if raw:
        return raw_reply(err.status, f"[{text}]".encode())
    return Reply(err.status, [text])


def _rejected(err: Rejected, options: Options) -> Reply:
    status, error = 406, err.error
    if isinstance(err, EmailRequired):
        status = options.email_required_status
    elif isinstance(err, UnknownTag):
        error = options.unknown_tag_error
    body: dict[str, Any] = {"error": error}
    if err.code is not None:
        body["code"] = err.code
    return Reply(status, body)


def _field_rejected(err: FieldRejected, options: Options) -> Reply:
    if err.on_update and options.update_validation_error7:
        return Reply(406, {"error": 7})
    return Reply(
        406,
        {"error": 8, "field": err.field, "name": err.name, "field_value": err.value, "reason": err.reason},
    )


def error_reply(err: FakeError, options: Options) -> Reply:
    """The reply for a fake error, honouring the language and shape options."""
    if isinstance(err, Refused):
        return _refused(err, options)
    if isinstance(err, Rejected):
        return _rejected(err, options)
    if isinstance(err, FieldRejected):
        return _field_rejected(err, options)
    if isinstance(err, ContactUnsubscribed):
        return Reply(406, options.unsubscribed_error)
    raise TypeError(f"unknown fake error {err!r}")


def method_not_allowed(method: str, path: str, allowed: tuple[str, ...]) -> Reply:
    """405 with the bare JSON string Symfony answers, slashes escaped the way PHP's json_encode does.

    ``path`` is the normalized path (no ``/api``, no ``.json``); the message names the internal URL.
    """
    allow = ", ".join(allowed)
    text = f'No route found for "{method} {INTERNAL_API_URL}{path}.json": Method Not Allowed (Allow: {allow})'
    payload = json.dumps(text, ensure_ascii=False).replace("/", "\\/").encode("utf-8")
    return raw_reply(405, payload, ("allow", allow))


def fault_reply(injected: Injected, options: Options) -> Reply:
    """The answer to an injected fault: a short message, or an empty 5xx body as recorded."""
    headers = () if injected.retry_after is None else (("retry-after", str(injected.retry_after)),)
    if injected.status >= 500 and options.empty_server_errors:
        return raw_reply(injected.status, b"", *headers)
    return Reply(injected.status, [_INJECTED_TEXT.get(injected.status, "Injected fault")], headers)
