"""One fake account's in-memory data: its login, opt-in processes, fields, tags, contacts, DOI mails.

Definitions (accounts, opt-in processes, data fields) are frozen values; tags and contacts change
in place. ``State`` keeps the lookup indexes (email, SMS number, contact key) next to the contacts;
only the contact rules in ``store`` change contacts, so the indexes stay consistent.
Timestamps are unix seconds (ints) on the server's wall clock.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from fake_klicktipp.fieldtypes import FieldType

Status = Literal["subscribed", "pending", "unsubscribed"]
Bounce = Literal["nobounce", "softbounce", "hardbounce", "spambounce"]
STATUSES: Final[frozenset[str]] = frozenset(get_args(Status))
BOUNCES: Final[frozenset[str]] = frozenset(get_args(Bounce))


@dataclass(frozen=True)
class Account:
    """Login credentials, optional partner keys, and the ``account`` object the login answers with."""

    username: str
    password: str
    developer_key: str | None
    customer_key: str | None
    profile: Mapping[str, str]


@dataclass(frozen=True)
class OptInProcess:
    """An opt-in process ("list"); the one with an empty name is the account's default DOI."""

    id: int
    name: str
    single_opt_in: bool
    pending_url: str
    thankyou_url: str
    resend_confirmation_email: bool = False
    use_change_email: bool = False


@dataclass(frozen=True)
class DataField:
    """A data field: key (``fieldFirstName``, ``field100001``), UI label, and input type."""

    key: str
    label: str
    type: FieldType

    @property
    def short_id(self) -> str:
        """The id ``GET /field/{id}`` takes and answers with: the key without ``field``."""
        return self.key.removeprefix("field")


@dataclass
class Tag:
    """A manual tag, or a SmartTag (``smart``) that only the system assigns."""

    id: int
    name: str
    text: str
    smart: bool


@dataclass
class Contact:
    """One subscriber. ``tags`` maps tag id to the unix time it was assigned (manual and smart)."""

    id: int
    email: str
    sms_phone: str
    listid: int
    status: Status
    bounce: Bounce
    created: int
    confirmed: int | None = None
    unsubscribed: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    tags: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The "Contact Key": a stable hash of the id, accepted wherever the id is."""
        return contact_key(self.id)


@dataclass(frozen=True)
class DoiMail:
    """A confirmation email the fake "sent" (recorded so tests can assert no accidental DOI mail)."""

    contact_id: int
    email: str
    listid: int
    at: int


@dataclass
class State:
    """Everything one fake account holds, with the lookup indexes of its contacts.

    ``accounts`` holds the login that owns this data (one: every account has data of its own).
    """

    accounts: dict[str, Account]
    lists: dict[int, OptInProcess]
    default_list_id: int
    fields: dict[str, DataField]
    tags: dict[int, Tag]
    contacts: dict[int, Contact] = field(default_factory=dict)
    by_email: dict[str, int] = field(default_factory=dict)
    by_sms: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)
    doi_mails: list[DoiMail] = field(default_factory=list)
    last_doi_mail: dict[tuple[int, int], int] = field(default_factory=dict)
    next_contact_id: int = 1
    next_tag_id: int = 1


def email_key(email: str) -> str:
    """Emails match case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def contact_key(contact_id: int) -> str:
    """A deterministic 12-character lowercase key derived from the contact id."""
    digest = hashlib.sha256(f"fake-klicktipp-contact:{contact_id}".encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:12].lower()
