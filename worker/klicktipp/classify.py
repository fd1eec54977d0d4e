"""Turn an error answer or a transport exception into the right ``KlickTippError`` (pure functions).

Rules, in order (KLICKTIPP_API.md §4, §11):

1. 2xx handed in here means the body had the wrong shape: ``MalformedResponse``.
2. The status alone decides 5xx, 429 and 404 (proxies put HTML there; KlickTipp answers a search
   miss with the raw, not-JSON ``[Diesen Kontakt gibt es nicht.]``, an unknown contact with an empty
   body: all "not found").
3. A numeric code (``{"error":N,"code":M}``, ``["Error N"]``, an object embedded in a string) or a
   field-validation object is read through ``ERROR_TABLE``, by operation where KlickTipp's answers
   are ambiguous. This holds for 401/403 too: KlickTipp sends business errors with them
   (``401 {"error":32}``).
4. A 401 that is a request bug is ``BadRequest``, not a reason to log in again: the framework's
   raw ``[message]`` (not JSON: ``[Missing required argument email]``), or its fixed, untranslated
   "Missing required argument" marker in JSON (``["Missing required argument apikey"]``, recorded on
   a German account). Other 401/403 (``["Wrong username or password."]``) are ``AuthError``.
5. Otherwise the status decides whatever the body: 400, 401, 403, 405, 406 (string arrays, English or
   German: a plain ``Rejected`` that keeps the messages), 409; other statuses are ``UnexpectedStatus``.

A ``Retry-After`` header is honoured on every status. Message text is kept, never matched (it
follows the account's language; the one exception is rule 4's framework marker); the HTTP reason
phrase is kept too (``http_reason``), the one clue an empty body leaves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final

import requests

from .codes import TAG_OPERATIONS, UPDATE_OPERATION, describe
from .error_body import ErrorBody, read_error_body
from .errors import (
    APIError,
    AuthError,
    BadRequest,
    ConflictError,
    ContactNotFound,
    ContactOrTagNotFound,
    MalformedResponse,
    MethodNotAllowed,
    NotFound,
    NotSubscribedError,
    RateLimited,
    ReferenceNotFound,
    Rejected,
    RequestTimeout,
    ServerError,
    SubscriptionNotFound,
    TransportError,
    UnexpectedStatus,
    UnsubscribedError,
    ValidationError,
)

_BY_STATUS: Final[Mapping[int, type[APIError]]] = MappingProxyType(
    {
        400: BadRequest,
        401: AuthError,
        403: AuthError,
        404: NotFound,
        405: MethodNotAllowed,
        406: Rejected,
        409: ConflictError,
        429: RateLimited,
    }
)
#: Statuses where the status alone decides, whatever the body says (rule 2; 5xx besides).
_STATUS_DECIDES: Final = frozenset({404, 429})
#: The request framework's own (untranslated) text for a missing argument, on 401 (rule 4).
_MISSING_ARGUMENT: Final = "Missing required argument"


@dataclass(frozen=True)
class Rule:
    """One row of the error table: ``error`` (with subcode ``code`` of error 10, None for any) on
    ``operations`` (None for any) is ``cls``; ``evidence`` says why (KLICKTIPP_API.md §4.3, §11)."""

    error: int
    cls: type[APIError]
    evidence: str
    code: int | None = None
    operations: Collection[str] | None = None

    def matches(self, error: int, code: int | None, operation: str) -> bool:
        return (
            error == self.error
            and (self.code is None or self.code == code)
            and (self.operations is None or operation in self.operations)
        )


#: Numeric codes to error classes. The first matching row wins: specific rows before general ones.
#: ``{"error": 4}`` and ``["Error 4"]`` read alike (the body form does not change the code).
ERROR_TABLE: Final[tuple[Rule, ...]] = (
    Rule(4, SubscriptionNotFound, "the spec and KlickTipp's connectors since 2026-01 (n8n bb8e097): "
         "'subscription not found'; before: 'unsubscribed, cannot re-subscribe'. Recorded on POST "
         "/subscriber as ['Error 4'] (klicktipp-mcp). Ambiguous: the sync reads the contact."),
    Rule(7, ContactOrTagNotFound, "d3 SubscriberTest labels tag's 7 'unknown mail / tag': an unknown "
         "tag answers 7, not the spec's 403. The sync re-reads the tags before concluding.",
         operations=TAG_OPERATIONS),
    Rule(7, ValidationError, "KlickTipp's connectors (fix 56215b2, 2026-07): 7 on Update Contact is "
         "'field validation failed'.", operations=(UPDATE_OPERATION,)),
    Rule(7, ContactNotFound, "spec: 'subscriber email not found' (unsubscribe: d3 recording). n8n also "
         "reads 7 as field validation on get/delete (L): id-keyed, so 'no such contact' here."),
    Rule(5, ValidationError, "spec: email address validation failed"),
    Rule(6, Rejected, "connectors: error sending the confirmation email"),
    Rule(8, ValidationError, "spec: field validation failed"),
    Rule(9, NotSubscribedError, "spec; d3: unsubscribe of a pending contact"),
    Rule(10, UnsubscribedError, "connectors Aug 2025 - Jan 2026, removed since (L): email unsubscribed",
         code=4),
    Rule(10, ValidationError, "connectors: invalid email address", code=5),
    Rule(10, Rejected, "connectors: error sending the confirmation email", code=6),
    Rule(10, ConflictError, "connectors: SMS number assigned to another contact", code=9),
    Rule(10, UnsubscribedError, "connectors since 2026-01: SMS number unsubscribed", code=10),
    Rule(10, ValidationError, "connectors: invalid phone number", code=11),
    Rule(10, ServerError, "connectors until 2026-01: internal error", code=12),
    Rule(10, ValidationError, "connectors: email address blocked", code=30),
    Rule(10, Rejected, "connectors until 2026-01: SmartTags are assigned by the system", code=31),
    Rule(10, ValidationError, "connectors until 2026-01: email or SMS number required", code=32),
    Rule(10, Rejected, "spec: subscriber update failed (unknown subcode)"),
    Rule(11, ValidationError, "connectors: invalid phone number"),
    Rule(12, ServerError, "connectors: internal error"),
    Rule(30, ConflictError, "spec: email address change not allowed"),
    Rule(31, Rejected, "spec: untagging a SmartTag is not allowed"),
    Rule(32, ValidationError, "spec; d3: 401 {'error': 32} for a subscribe without email"),
    Rule(100, AuthError, "spec: invalid API key"),
    Rule(401, ContactNotFound, "spec: user not found (older connectors: contact not found)"),
    *(Rule(n, ReferenceNotFound, "spec: list, tag, user group, campaign, tier not found")
      for n in (402, 403, 404, 405, 406)),
    *(Rule(n, ValidationError, "spec: account field required") for n in (501, 502, 503, 504, 505)),
    Rule(506, ConflictError, "spec: username exists"),
    Rule(507, ConflictError, "spec: email address exists (newemail collisions)"),
    Rule(508, Rejected, "spec: user update failed"),
)  # fmt: skip
_REFERENCE_KINDS: Final[Mapping[int, str]] = MappingProxyType(
    {402: "list", 403: "tag", 404: "user_group", 405: "campaign", 406: "tier"}
)


def error_from_response(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    operation: str,
    http_reason: str | None = None,
    now: float | None = None,
) -> APIError:
    """Classify one error answer. ``http_reason`` is the status line's phrase (default: the standard
    one); ``now`` (unix seconds) resolves a Retry-After HTTP-date (default: the clock)."""
    parsed = read_error_body(body)
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
    phrase = (http_reason or "").strip() or _standard_phrase(status)
    cls = _choose_class(status, parsed, operation)
    kwargs: dict[str, Any] = {
        "operation": operation,
        "status": status,
        "error": parsed.error,
        "code": parsed.code,
        "retry_after": retry_after,
        "messages": parsed.messages,
        "http_reason": phrase or None,
    }
    if cls is ValidationError and parsed.field_info:
        kwargs.update(parsed.field_info)
    if cls is ReferenceNotFound and parsed.error is not None:
        kwargs["kind"] = _REFERENCE_KINDS.get(parsed.error)
    return cls(_message(status, phrase, parsed, operation, cls), **kwargs)


def _choose_class(status: int, parsed: ErrorBody, operation: str) -> type[APIError]:
    if 200 <= status < 300:
        return MalformedResponse
    if status >= 500:
        return ServerError
    if status in _STATUS_DECIDES:
        return _BY_STATUS[status]
    by_code = class_for_codes(parsed, operation)
    if by_code is not None:
        return by_code
    if status == 401 and (
        parsed.form == "raw" or any(m.startswith(_MISSING_ARGUMENT) for m in parsed.messages)
    ):
        return BadRequest
    return _BY_STATUS.get(status, UnexpectedStatus)


def class_for_codes(parsed: ErrorBody, operation: str) -> type[APIError] | None:
    """The class ``ERROR_TABLE`` gives the body's code on ``operation``; None without a known code."""
    if parsed.field_info:
        return ValidationError
    if parsed.error is None:
        return None
    error = parsed.error
    return next((r.cls for r in ERROR_TABLE if r.matches(error, parsed.code, operation)), None)


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _message(status: int, phrase: str, parsed: ErrorBody, operation: str, cls: type[APIError]) -> str:
    if cls is ValidationError and parsed.field_info:
        return _validation_message(parsed.field_info)
    if parsed.messages:
        return "; ".join(parsed.messages)
    meaning = describe(parsed.error, parsed.code, operation)
    if meaning:
        return meaning
    status_line = f"HTTP {status} {phrase}".rstrip()
    if parsed.excerpt:
        return f"{status_line} with an unexpected body: {parsed.excerpt}"
    return f"{status_line} with an empty body"


def _validation_message(info: Mapping[str, str | None]) -> str:
    """Render like KlickTipp's connectors: Validation error: Lead Value "fieldLeadValue" with value "abc" …"""
    parts = ["Validation error:"]
    if info.get("field"):
        parts.append(str(info["field"]))
    if info.get("field_key"):
        parts.append(f'"{info["field_key"]}"')
    if info.get("field_value") is not None:
        parts.append(f'with value "{info["field_value"]}"')
    parts.append(info.get("field_reason") or "is invalid")
    return " ".join(parts)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def error_from_exception(exc: requests.RequestException, *, operation: str) -> TransportError:
    """Classify a ``requests`` exception raised before a complete answer arrived."""
    cls = RequestTimeout if isinstance(exc, requests.Timeout) else TransportError
    detail = str(exc) or "no detail"
    return cls(f"{type(exc).__name__}: {detail}", operation=operation)
