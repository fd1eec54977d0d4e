"""The one error hierarchy of the KlickTipp client: every failed call raises a ``KlickTippError``.

The key split, as in httpx, is *no answer* (``TransportError``) versus *a bad answer* (``APIError``)::

    KlickTippError                    reason               retryable  raised for
    ├── TransportError                transport            yes        connection refused/reset, DNS, TLS, broken body
    │   └── RequestTimeout            timeout              yes        connect or read timeout
    └── APIError                      api                  no         (base of every answer; has status, messages)
        ├── UnexpectedStatus          unexpected_status    no         a status KlickTipp does not use (3xx, 410, …)
        ├── ServerError               server               yes        5xx; also error 12 / error 10 code 12
        ├── RateLimited               rate_limited         yes        429 (``retry_after`` from Retry-After)
        ├── MalformedResponse         malformed_response   yes        body not JSON, or JSON of the wrong shape
        ├── AuthError                 auth                 no         401/403 (after the one re-login), error 100
        ├── NotFound                  not_found            no         404
        ├── BadRequest                bad_request          no         400
        ├── MethodNotAllowed          method_not_allowed   no         405
        └── Rejected                  rejected             no         406 business rejection (also string arrays)
            ├── ValidationError       validation           no         5, 8, 11, 32, 501-505, 10/5, 10/11, 10/30,
            │                                                         10/32, field objects, 7 on subscriber.update
            ├── ConflictError         conflict             no         507, 506, 30, 10/9, HTTP 409
            ├── UnsubscribedError     unsubscribed         no         4, 10/4, 10/10: never re-subscribe
            ├── NotSubscribedError    not_subscribed       no         9
            ├── ContactNotFound       contact_not_found    no         7 on email-keyed operations, 401
            └── ReferenceNotFound     reference_not_found  no         402 list, 403 tag, 404-406 (``kind`` says which)

``reason`` is a stable slug for dead-letter grouping; ``retryable`` says whether the same request may succeed
later. Both are class attributes: classify by type and fields, never by message text. ``ConfigError`` stands
outside the tree: it is a bad configuration found at start-up, never the outcome of a call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .codes import describe

__all__ = [
    "APIError",
    "AuthError",
    "BadRequest",
    "ConfigError",
    "ConflictError",
    "ContactNotFound",
    "KlickTippError",
    "MalformedResponse",
    "MethodNotAllowed",
    "NotFound",
    "NotSubscribedError",
    "RateLimited",
    "ReferenceNotFound",
    "Rejected",
    "RequestTimeout",
    "ServerError",
    "TransportError",
    "UnexpectedStatus",
    "UnsubscribedError",
    "ValidationError",
]


class ConfigError(ValueError):
    """The client's configuration (environment, arguments) is incomplete or invalid."""


class KlickTippError(Exception):
    """Base of every failed KlickTipp call."""

    reason: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        error: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status = status
        self.error = error
        self.code = code
        self.retry_after = retry_after

    @property
    def meaning(self) -> str | None:
        """KlickTipp's documented meaning of ``(error, code)`` on this operation, for operators."""
        return describe(self.error, self.code, self.operation)

    def _init_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this error (extended by subclasses with fields)."""
        return {
            "operation": self.operation,
            "status": self.status,
            "error": self.error,
            "code": self.code,
            "retry_after": self.retry_after,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description, for the dead-letter store and structured logs."""
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in self._init_kwargs().items()}
        return {
            "type": type(self).__name__,
            "reason": self.reason,
            "retryable": self.retryable,
            "message": self.message,
            "meaning": self.meaning,
            **fields,
        }

    def __str__(self) -> str:
        head = f"{self.operation}:"
        if self.status is not None:
            head += f" HTTP {self.status}"
        head += f" {self.reason}"
        if self.error is not None:
            head += f" (error {self.error}" + (f", code {self.code})" if self.code is not None else ")")
        text = f"{head}: {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default Exception pickling (Celery pickles errors).
        return (_rebuild, (type(self), self.message, self._init_kwargs()))


def _rebuild(cls: type[KlickTippError], message: str, kwargs: dict[str, Any]) -> KlickTippError:
    return cls(message, **kwargs)


class TransportError(KlickTippError):
    """No answer: the request did not complete (connection, DNS, TLS, or a body cut off)."""

    reason = "transport"
    retryable = True


class RequestTimeout(TransportError):
    """No answer in time: connect or read timeout."""

    reason = "timeout"


class APIError(KlickTippError):
    """A bad answer: KlickTipp (or a proxy in front of it) answered with an error status or body."""

    reason = "api"

    def __init__(self, message: str, *, messages: tuple[str, ...] | list[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.messages: tuple[str, ...] = tuple(messages)

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "messages": self.messages}


class UnexpectedStatus(APIError):
    """A status KlickTipp does not document (redirects are not followed, so 3xx lands here)."""

    reason = "unexpected_status"


class ServerError(APIError):
    """5xx, or KlickTipp's own 'internal error' code: probably transient."""

    reason = "server"
    retryable = True


class RateLimited(APIError):
    """429 Too Many Requests; ``retry_after`` holds the server's wish in seconds when it sent one."""

    reason = "rate_limited"
    retryable = True


class MalformedResponse(APIError):
    """The body is not JSON or not the documented shape (``status`` may be 2xx)."""

    reason = "malformed_response"
    retryable = True


class AuthError(APIError):
    """401/403: wrong credentials, a plan without API access, or a session that stayed invalid."""

    reason = "auth"


class NotFound(APIError):
    """404: the addressed entity does not exist."""

    reason = "not_found"


class BadRequest(APIError):
    """400: the request was malformed."""

    reason = "bad_request"


class MethodNotAllowed(APIError):
    """405: wrong method on this route (a client bug or a wrong base URL)."""

    reason = "method_not_allowed"


class Rejected(APIError):
    """406 (or 409): KlickTipp refused the request for a business reason; retrying will not help."""

    reason = "rejected"


class ValidationError(Rejected):
    """A value was refused; ``field_*`` come from KlickTipp's field-validation object when it sent one."""

    reason = "validation"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        field_key: str | None = None,
        field_value: str | None = None,
        field_reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.field = field
        self.field_key = field_key
        self.field_value = field_value
        self.field_reason = field_reason

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            **super()._init_kwargs(),
            "field": self.field,
            "field_key": self.field_key,
            "field_value": self.field_value,
            "field_reason": self.field_reason,
        }


class ConflictError(Rejected):
    """The value belongs to another contact or entity (email or SMS number exists, duplicate name)."""

    reason = "conflict"


class UnsubscribedError(Rejected):
    """The contact (email or SMS) unsubscribed; KlickTipp forbids re-subscribing it. Never retry."""

    reason = "unsubscribed"


class NotSubscribedError(Rejected):
    """The contact is not subscribed (e.g. unsubscribe while the opt-in is pending)."""

    reason = "not_subscribed"


class ContactNotFound(Rejected):
    """No contact has this email address (email-keyed operations: tag, untag, unsubscribe)."""

    reason = "contact_not_found"


class ReferenceNotFound(Rejected):
    """A referenced list, tag, user group, campaign or tier does not exist; ``kind`` says which."""

    reason = "reference_not_found"

    def __init__(self, message: str, *, kind: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.kind = kind

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "kind": self.kind}
