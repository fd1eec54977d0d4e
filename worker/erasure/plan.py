"""Whom a privacy deletion concerns and what of ktsync's stores it removes: pure decisions on plain data.

A privacy deletion (GDPR erasure) names a person by a CRM contact, an e-mail address or a KlickTipp
id: the :class:`Subject`. A *record* (a state record, a dead letter's message, a review entry, an
outbound payload, a parked message: all speak of ``source``, ``crm_contact_id``, ``email`` and
``klicktipp_id``) is *about* the subject when it names one of its contacts, addresses or KlickTipp
ids; what such a record adds (the address of a contact, the KlickTipp id of an address) widens the
subject, until nothing new is learnt (:func:`widen`). An item is removed when it is about the subject
or merely mentions one of its addresses anywhere (:func:`doomed`), say a conflict naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]  # reads: source, crm_contact_id, email, klicktipp_id
Contact = tuple[str, str]  # (source, crm_contact_id)

# The stores an erasure removes items from (the keys of ErasureReport.removed, with the rest below).
DEAD_LETTERS, REVIEW, OUTBOUND, PARKED = "dead_letters", "review", "outbound", "parked"
ITEM_STORES = (DEAD_LETTERS, REVIEW, OUTBOUND, PARKED)
TIMELINES, KEYS = "timelines", "keys"  # per-contact timelines; index and dedupe keys naming an address


def address(value: object) -> str | None:
    """An e-mail address as ktsync compares it (trimmed, lower case), None for anything else."""
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip().lower() or None


@dataclass(frozen=True)
class Subject:
    """What is known of one person: CRM contacts, e-mail addresses (lower case), KlickTipp ids."""

    contacts: frozenset[Contact] = frozenset()
    emails: frozenset[str] = frozenset()
    klicktipp_ids: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        contacts: Iterable[Contact] = (),
        emails: Iterable[str | None] = (),
        klicktipp_ids: Iterable[str | None] = (),
    ) -> Subject:
        return cls(
            frozenset(contacts),
            frozenset(a for a in map(address, emails) if a),
            frozenset(str(k) for k in klicktipp_ids if k),
        )

    def __or__(self, other: Subject) -> Subject:
        return Subject(
            self.contacts | other.contacts,
            self.emails | other.emails,
            self.klicktipp_ids | other.klicktipp_ids,
        )

    def __bool__(self) -> bool:
        return bool(self.contacts or self.emails or self.klicktipp_ids)

    def shares(self, other: Subject) -> bool:
        """Whether the two name one contact, address or KlickTipp id in common."""
        return bool(
            self.contacts & other.contacts
            or self.emails & other.emails
            or self.klicktipp_ids & other.klicktipp_ids
        )


def contact_of(record: Record) -> Contact | None:
    """The CRM contact a record names, if it names one."""
    source, crm_contact_id = record.get("source"), record.get("crm_contact_id")
    return (str(source), str(crm_contact_id)) if source and crm_contact_id else None


def identity(record: Record) -> Subject:
    """Whom a record speaks of."""
    contact = contact_of(record)
    kt_id = record.get("klicktipp_id")
    return Subject.of(
        contacts=[contact] if contact else [],
        emails=[record.get("email")],
        klicktipp_ids=[str(kt_id)] if isinstance(kt_id, str | int) and not isinstance(kt_id, bool) else [],
    )


def about(subject: Subject, record: Record) -> bool:
    return subject.shares(identity(record))


def mentions(subject: Subject, body: object) -> bool:
    """Whether one of the subject's addresses occurs anywhere in ``body`` (any letter case)."""
    if not subject.emails:
        return False
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, default=str).lower()
    return any(email in text for email in subject.emails)


def widen(subject: Subject, records: Iterable[Record]) -> Subject:
    """The subject plus whatever the records about it say, repeated until nothing new is learnt."""
    pool = [identity(record) for record in records]
    while True:
        grown = subject
        for who in pool:
            if grown.shares(who):
                grown = grown | who
        if grown == subject:
            return subject
        subject = grown


@dataclass(frozen=True)
class Item:
    """One thing a store holds: the store, its key there, the record it is about, and its whole body."""

    store: str
    key: str
    record: Record
    body: object = None


def doomed(subject: Subject, items: Iterable[Item]) -> dict[str, tuple[str, ...]]:
    """Per store, the keys of the items to remove: about the subject, or mentioning its address."""
    found: dict[str, list[str]] = {store: [] for store in ITEM_STORES}
    for item in items:
        if about(subject, item.record) or mentions(subject, item.body):
            found.setdefault(item.store, []).append(item.key)
    return {store: tuple(keys) for store, keys in found.items()}


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did, in ids and counts only (never an address or a name)."""

    contacts: tuple[str, ...]  # "source/crm_contact_id" of every tombstone written
    klicktipp_deleted: tuple[str, ...]
    klicktipp_gone: tuple[str, ...]  # known ids KlickTipp no longer had: nothing to do
    removed: Mapping[str, int] = field(default_factory=dict)  # store -> items or keys removed
    requested_at: float = 0.0
    erased_at: float = 0.0
    by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "contacts": list(self.contacts),
            "klicktipp_deleted": list(self.klicktipp_deleted),
            "klicktipp_gone": list(self.klicktipp_gone),
            "removed": dict(self.removed),
            "requested_at": self.requested_at,
            "erased_at": self.erased_at,
            "by": self.by,
        }
