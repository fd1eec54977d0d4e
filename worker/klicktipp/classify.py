"""Turn an error answer or a transport exception into the right ``KlickTippError`` (pure functions).

Rules, in order (KLICKTIPP_API.md §4):

1. 2xx handed in here means the body had the wrong shape: ``MalformedResponse``.
2. 5xx and 429 are decided by the status alone: it is all the retry decision needs, and proxies put
   HTML there. 401 and 403 are ``AuthError`` (so session auth logs in again) unless the body carries a
   known numeric ``error``: KlickTipp also sends business errors with them (``401 {"error":32}``).
3. Otherwise a numeric body (``{"error":N,"code":M}``, also embedded in a string, "regex the first {…}")
   or a field-validation object is classified by the code tables below; code 7 depends on the operation.
4. Otherwise the status decides: 400, 404, 405, 406 (string arrays, English or German: a plain
   ``Rejected`` that keeps the messages), 409; other statuses are ``UnexpectedStatus``.
5. A non-empty body that is not JSON (or JSON of no error shape) is ``MalformedResponse``.

A ``Retry-After`` header is honoured on every status. Message text is kept, never matched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, Final

import requests

from .codes import UPDATE_OPERATION, describe
from .error_body import ErrorBody, read_error_body
from .errors import (
    APIError,
    AuthError,
    BadRequest,
    ConflictError,
    ContactNotFound,
    MalformedResponse,
    MethodNotAllowed,
    NotFound,
    NotSubscribedError,
    RateLimited,
    ReferenceNotFound,
    Rejected,
    RequestTimeout,
    ServerError,
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
#: Statuses where the status alone decides (see rule 2); 401/403 yield to a known numeric error.
_STATUS_DECIDES: Final = frozenset({429})
_AUTH_STATUSES: Final = frozenset({401, 403})

_BY_ERROR: Final[Mapping[int, type[APIError]]] = MappingProxyType(
    {
        4: UnsubscribedError,
        5: ValidationError,
        6: Rejected,
        7: ContactNotFound,
        8: ValidationError,
        9: NotSubscribedError,
        10: Rejected,
        11: ValidationError,
        12: ServerError,
        30: ConflictError,
        31: Rejected,
        32: ValidationError,
        100: AuthError,
        401: ContactNotFound,
        **dict.fromkeys((402, 403, 404, 405, 406), ReferenceNotFound),
        **dict.fromkeys((501, 502, 503, 504, 505), ValidationError),
        506: ConflictError,
        507: ConflictError,
        508: Rejected,
    }
)
_BY_ERROR_10_CODE: Final[Mapping[int, type[APIError]]] = MappingProxyType(
    {
        4: UnsubscribedError,
        5: ValidationError,
        6: Rejected,
        9: ConflictError,
        10: UnsubscribedError,
        11: ValidationError,
        12: ServerError,
        30: ValidationError,
        31: Rejected,
        32: ValidationError,
    }
)
_BY_ERROR_IN_OPERATION: Final[Mapping[tuple[int, str], type[APIError]]] = MappingProxyType(
    {(7, UPDATE_OPERATION): ValidationError}
)
_REFERENCE_KINDS: Final[Mapping[int, str]] = MappingProxyType(
    {402: "list", 403: "tag", 404: "user_group", 405: "campaign", 406: "tier"}
)


def error_from_response(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    operation: str,
    now: float | None = None,
) -> APIError:
    """Classify one error answer. ``now`` (unix seconds) resolves a Retry-After HTTP-date; default: clock."""
    parsed = read_error_body(body)
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
    cls = _choose_class(status, parsed, operation)
    kwargs: dict[str, Any] = {
        "operation": operation,
        "status": status,
        "error": parsed.error,
        "code": parsed.code,
        "retry_after": retry_after,
        "messages": parsed.messages,
    }
    if cls is ValidationError and parsed.field_info:
        kwargs.update(parsed.field_info)
    if cls is ReferenceNotFound and parsed.error is not None:
        kwargs["kind"] = _REFERENCE_KINDS.get(parsed.error)
    return cls(_message(status, parsed, operation, cls), **kwargs)


def _choose_class(status: int, parsed: ErrorBody, operation: str) -> type[APIError]:
    if 200 <= status < 300:
        return MalformedResponse
    if status >= 500:
        return ServerError
    if status in _STATUS_DECIDES:
        return _BY_STATUS[status]
    by_code = _class_from_codes(parsed, operation)
    if status in _AUTH_STATUSES:
        return by_code or AuthError
    if by_code is not None:
        return by_code
    if not parsed.understood:
        return MalformedResponse
    return _BY_STATUS.get(status, UnexpectedStatus)


def _class_from_codes(parsed: ErrorBody, operation: str) -> type[APIError] | None:
    if parsed.field_info:
        return ValidationError
    if parsed.error is None:
        return None
    if (parsed.error, operation) in _BY_ERROR_IN_OPERATION:
        return _BY_ERROR_IN_OPERATION[(parsed.error, operation)]
    if parsed.error == 10 and parsed.code is not None and parsed.code in _BY_ERROR_10_CODE:
        return _BY_ERROR_10_CODE[parsed.code]
    return _BY_ERROR.get(parsed.error)


def _message(status: int, parsed: ErrorBody, operation: str, cls: type[APIError]) -> str:
    if cls is ValidationError and parsed.field_info:
        return _validation_message(parsed.field_info)
    if parsed.messages:
        return "; ".join(parsed.messages)
    meaning = describe(parsed.error, parsed.code, operation)
    if meaning:
        return meaning
    if parsed.excerpt:
        return f"HTTP {status} with an unexpected body: {parsed.excerpt}"
    return f"HTTP {status} with an empty body"


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
