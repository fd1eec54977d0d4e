"""What a CRM fetcher returns, its interface, and which fetchers the environment configures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ktsync.core.contract import PropertyValue
from ktsync.core.errors import KtsyncError


@dataclass(frozen=True)
class FetchedContact:
    """The contact as the CRM has it now, in contract v1 terms."""

    email: str | None
    sms_number: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)


class FetchError(KtsyncError):
    """The CRM API failed; ``retryable`` says whether trying later may help.

    ``crm`` and ``status`` (None: no answer) say where and how; messages never carry credentials.
    """

    reason = "crm_fetch"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        crm: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.crm = crm
        self.status = status

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "crm": self.crm,
            "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description, for the dead-letter store."""
        return {
            "type": type(self).__name__,
            "reason": self.reason,
            "message": self.message,
            **self._init_kwargs(),
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive Exception's default pickling (Celery pickles errors).
        return (_rebuild, (type(self), self.message, self._init_kwargs()))


def _rebuild(cls: type[FetchError], message: str, kwargs: dict[str, Any]) -> FetchError:
    return cls(message, **kwargs)


class CrmConfigError(KtsyncError, ValueError):
    """A CRM environment variable is set but invalid (named in the message); found at start-up."""


class CrmFetcher:
    """Base of the CRM clients: ``fetch`` returns None when the CRM no longer has the contact."""

    def fetch(self, crm_contact_id: str) -> FetchedContact | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


def fetchers_from_env(env: Mapping[str, str]) -> dict[str, CrmFetcher]:
    """Source name -> fetcher, for every CRM whose API credentials are in the environment.

    ``hubspot``: ``HUBSPOT_ACCESS_TOKEN``; ``close``: ``CLOSE_API_KEY``; ``zoho``: ``ZOHO_ACCESS_TOKEN``
    (each module documents its other variables). Raises ``CrmConfigError`` for an invalid value.
    """
    # Imported here: the CRM modules import this one.
    from ktsync.worker.crm import close, hubspot, zoho

    fetchers: dict[str, CrmFetcher] = {}
    try:
        for name, from_env in (
            (hubspot.SOURCE, hubspot.from_env),
            (close.SOURCE, close.from_env),
            (zoho.SOURCE, zoho.from_env),
        ):
            fetcher = from_env(env)
            if fetcher is not None:
                fetchers[name] = fetcher
    except CrmConfigError:
        for built in fetchers.values():
            built.close()
        raise
    return fetchers
