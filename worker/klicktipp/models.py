"""Typed, immutable values the KlickTipp client returns (IDs are always ``str``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal

#: Filter tokens of ``GET /subscriber`` and ``POST /subscriber/tagged`` (lowercase, exactly these).
StatusFilter = Literal["pending", "subscribed", "unsubscribed"]
BounceFilter = Literal["hardbounce", "softbounce", "spambounce", "nobounce"]
STATUS_FILTERS: Final = frozenset({"pending", "subscribed", "unsubscribed"})
BOUNCE_FILTERS: Final = frozenset({"hardbounce", "softbounce", "spambounce", "nobounce"})

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class SubscriptionStatus(StrEnum):
    """A contact's email subscription, normalized from KlickTipp's display ``status``."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"
    UNSUBSCRIBED = "unsubscribed"
    UNKNOWN = "unknown"

    @classmethod
    def from_raw(cls, raw: str | None) -> SubscriptionStatus:
        """``"Subscribed"``, ``"Opt-In Pending"``, ``"unsubscribed"`` … in any case; anything else: UNKNOWN."""
        key = re.sub(r"[^a-z]", "", (raw or "").lower())
        return _STATUS_ALIASES.get(key, cls.UNKNOWN)


_STATUS_ALIASES: Final[Mapping[str, SubscriptionStatus]] = MappingProxyType(
    {
        "subscribed": SubscriptionStatus.SUBSCRIBED,
        "optinpending": SubscriptionStatus.PENDING,
        "pending": SubscriptionStatus.PENDING,
        "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    }
)


@dataclass(frozen=True)
class Subscriber:
    """A KlickTipp contact (``GET /subscriber/{id}``, and the answer of ``POST /subscriber``)."""

    id: str
    email: str | None
    #: KlickTipp's display value as sent, e.g. ``"Opt-In Pending"``.
    status: str
    subscription: SubscriptionStatus
    bounce: str
    sms_phone: str | None
    listid: str | None
    #: Every ``field*`` key (``fieldFirstName``, ``field12345``) with its string value.
    fields: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    #: Tag IDs the contact carries (manual and smart); meaningful only when ``tags_known``.
    tags: frozenset[str] = frozenset()
    #: False when the answer had neither ``tags`` nor ``manual_tags``: recorded answers lack both
    #: (KLICKTIPP_API.md §3.4), and then ``tags`` is empty for want of news, not for want of tags.
    tags_known: bool = True
    #: Tag ID -> unix seconds when it was tagged.
    manual_tags: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    smart_tags: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: The answer as received (not compared: equality is about the typed fields).
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)


@dataclass(frozen=True)
class Tag:
    """A manual tag (``GET /tag/{id}``)."""

    id: str
    name: str
    text: str = ""


@dataclass(frozen=True)
class DataField:
    """A data field (``GET /field/{id}``); ``id`` is as KlickTipp sends it, without the ``field`` prefix."""

    id: str
    name: str


@dataclass(frozen=True)
class OptInProcess:
    """An opt-in process, called a list in the API (``GET /list/{id}``)."""

    id: str
    name: str
    use_single_optin: bool
    pending_url: str
    thankyou_url: str
    resend_confirmation_email: bool
    use_change_email: bool
    #: The answer as received (not compared: equality is about the typed fields).
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)


@dataclass(frozen=True)
class Account:
    """The KlickTipp account a session login belongs to (never carries the session itself)."""

    uid: str
    username: str
    email: str
    #: The answer as received (not compared: equality is about the typed fields).
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False, compare=False)
