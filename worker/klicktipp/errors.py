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
        ├── NotFound                  not_found            no         404, whatever the body (empty, raw text)
        ├── BadRequest                bad_request          no         400; 401 raw ``[Missing required argument …]``
        ├── MethodNotAllowed          method_not_allowed   no         405
        └── Rejected                  rejected             no         406 business rejection (also string arrays)
            ├── ValidationError       validation           no         5, 8, 11, 32, 501-505, 10/5, 10/11, 10/30,
            │                                                         10/32, field objects, 7 on subscriber.update
            ├── ConflictError         conflict             no         507, 506, 30, 10/9, HTTP 409
            ├── UnsubscribedError     unsubscribed         no         10/4, 10/10: never re-subscribe
            ├── SubscriptionNotFound  subscription_not_found no       4 (also ``["Error 4"]``): read the contact to
            │                                                         know whether it unsubscribed
            ├── NotSubscribedError    not_subscribed       no         9
            ├── ContactNotFound       contact_not_found    no         7 on unsubscribe and id-keyed operations, 401
            │   └── ContactOrTagNotFound contact_or_tag_not_found no  7 on tag/untag: unknown address *or* tag
            └── ReferenceNotFound     reference_not_found  no         402 list, 403 tag, 404-406 (``kind`` says which)

``classify.py`` holds the table that maps answers to these classes, with the evidence for each row.

``reason`` is a stable slug for dead-letter grouping; ``retryable`` says whether the same request may succeed
later. Both are class attributes, declared as on every ``KtsyncError`` (``ktsync.core.errors``, the base of
the tree): classify by type and fields, never by message text. ``KlickTippConfigError`` stands outside the
tree: it is a bad client configuration (credentials, base URL) found at start-up, never the outcome of a call.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ktsync.core.errors import KtsyncError

from .codes import describe

__all__ = [
    "APIError",
    "AuthError",
    "BadRequest",
    "ConflictError",
    "ContactNotFound",
    "ContactOrTagNotFound",
    "KlickTippConfigError",
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
    "SubscriptionNotFound",
    "TransportError",
    "UnexpectedStatus",
    "UnsubscribedError",
    "ValidationError",
]


E = TypeVar("E", bound="KlickTippError")


class KlickTippConfigError(KtsyncError, ValueError):
    """The client's configuration (credentials in the environment, base URL, arguments) is incomplete or
    invalid: found when the client is built, before any call."""


class KlickTippError(KtsyncError):
    """Base of every failed KlickTipp call."""

    reason = "error"

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

    def recast(self, cls: type[E], message: str) -> E:
        """The same answer as ``cls``, once the caller found out what an ambiguous one meant."""
        return cls(message, **self._init_kwargs())

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
    """A bad answer: KlickTipp (or a proxy in front of it) answered with an error status or body.

    ``http_reason`` is the status line's reason phrase (``Not Found``): all an operator gets from the
    empty 404 and 500 bodies KlickTipp sends.
    """

    reason = "api"

    def __init__(
        self,
        message: str,
        *,
        messages: tuple[str, ...] | list[str] = (),
        http_reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.messages: tuple[str, ...] = tuple(messages)
        self.http_reason = http_reason

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "messages": self.messages, "http_reason": self.http_reason}


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


class SubscriptionNotFound(Rejected):
    """Error 4. Its meaning changed in KlickTipp's own connectors (2026-01): "subscription not found",
    before that "unsubscribed, cannot re-subscribe". Read the contact to know which applies."""

    reason = "subscription_not_found"


class NotSubscribedError(Rejected):
    """The contact is not subscribed (e.g. unsubscribe while the opt-in is pending)."""

    reason = "not_subscribed"


class ContactNotFound(Rejected):
    """No contact has this email address (email-keyed operations: tag, untag, unsubscribe)."""

    reason = "contact_not_found"


class ContactOrTagNotFound(ContactNotFound):
    """Error 7 on tag or untag: KlickTipp answers it for an unknown address *and* for an unknown tag
    ("unknown mail / tag"), so a deleted tag looks like a missing contact until the tags are re-read."""

    reason = "contact_or_tag_not_found"


class ReferenceNotFound(Rejected):
    """A referenced list, tag, user group, campaign or tier does not exist; ``kind`` says which."""

    reason = "reference_not_found"

    def __init__(self, message: str, *, kind: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.kind = kind

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "kind": self.kind}
