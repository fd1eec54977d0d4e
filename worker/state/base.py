"""The contact state record and the interface of every state-store backend."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any, Protocol

from ktsync.worker.locks import LockBusy
from ktsync.worker.state.held import Held


@dataclass(frozen=True)
class ContactState:
    """What ktsync last applied for one CRM contact (a tombstone once the contact was deleted)."""

    source: str
    crm_contact_id: str
    klicktipp_id: str | None = None
    email: str | None = None
    sms_number: str | None = None
    fields_hash: str | None = None
    state_hash: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)  # owned tag names on the contact
    # The ids those tags had when applied: a tag deleted in KlickTipp (and perhaps created again under
    # a new id) is no longer on the contact, whatever ``tags`` says. Empty in states written before 0.3.
    tag_ids: frozenset[str] = field(default_factory=frozenset)
    occurred_at: float = 0.0  # of the last applied event
    subscription: str = "unknown"  # as KlickTipp last reported it
    updated_at: float = 0.0
    deleted_at: float | None = None
    # A privacy deletion (GDPR erasure): when it was requested, when carried out, by what. Kept when the
    # contact comes back later (a new subscription through the CRM), so that the history stays visible.
    erasure_requested_at: float | None = None
    erased_at: float | None = None
    erased_by: str | None = None

    @property
    def is_tombstone(self) -> bool:
        return self.deleted_at is not None

    def tombstone(self, *, occurred_at: float, now: float) -> ContactState:
        """Only IDs and times: the personal data (addresses, tags, hashes) is gone."""
        return ContactState(
            source=self.source,
            crm_contact_id=self.crm_contact_id,
            klicktipp_id=self.klicktipp_id,
            occurred_at=max(occurred_at, self.occurred_at),
            subscription=self.subscription,
            updated_at=now,
            deleted_at=now,
        ).with_erasure_of(self)

    def erased(self, *, requested_at: float, now: float, by: str) -> ContactState:
        """The tombstone of a privacy deletion: ids and times only, not even the subscription status.

        Events that happened before the request are stale against it (``occurred_at``); a later one (a
        new subscription through the CRM) is applied."""
        return replace(
            self.tombstone(occurred_at=requested_at, now=now),
            subscription="unknown",  # the default: not even the status is kept
            erasure_requested_at=requested_at,
            erased_at=now,
            erased_by=by,
        )

    def with_erasure_of(self, previous: ContactState | None) -> ContactState:
        """This record, keeping the erasure history of the one it replaces."""
        if previous is None or previous.erased_at is None:
            return self
        return replace(
            self,
            erasure_requested_at=previous.erasure_requested_at,
            erased_at=previous.erased_at,
            erased_by=previous.erased_by,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["tags"] = sorted(self.tags)
        data["tag_ids"] = sorted(self.tag_ids)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ContactState:
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}  # a newer release's keys are skipped
        return replace(cls(source=data.pop("source"), crm_contact_id=data.pop("crm_contact_id")), **{
            **data, "tags": frozenset(data.get("tags", ())), "tag_ids": frozenset(data.get("tag_ids", ()))
        })  # fmt: skip

    def carried(self, tag_ids: Mapping[str, str]) -> frozenset[str]:
        """The owned tags still on the contact, given the account's tags now (name -> id): a tag whose
        id changed or vanished since it was applied was deleted in KlickTipp, and left the contact."""
        if not self.tag_ids:  # written before tag ids were kept: trust the names
            return self.tags
        return frozenset(name for name in self.tags if tag_ids.get(name) in self.tag_ids)


class _Unknown(Enum):
    UNKNOWN = "unknown"


UNKNOWN = _Unknown.UNKNOWN
Previous = ContactState | None | _Unknown  # the record being replaced, when the caller has it
Event = tuple[str, int]  # (event_id, seconds to remember it)


@dataclass
class Claim:
    """The right to change one contact: held by one task at a time (a leased lock), with what it read."""

    source: str
    crm_contact_id: str
    token: str
    stored: ContactState | None
    seen: bool  # the event id was applied before
    done: bool = False  # committed, released, or its commit held for the task's closing round trip


class StateStore(Protocol):
    def get(self, source: str, crm_contact_id: str) -> ContactState | None: ...

    def load(
        self, source: str, crm_contact_id: str, event_id: str | None
    ) -> tuple[ContactState | None, bool]:
        """The record, and whether ``event_id`` was applied before (one round trip)."""
        ...

    def claim(self, source: str, crm_contact_id: str, event_id: str | None, *, lease: float) -> Claim | None:
        """Lock the contact (a lease that outlives a crashed worker by at most ``lease`` seconds) and
        read its record and whether ``event_id`` was applied, in one round trip; None when another
        task holds it."""
        ...

    def commit(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> None:
        """Write ``state`` (if any), remember ``event``, and release the claim, in one round trip."""
        ...

    def hold(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> Held:
        """``commit``, held back for the task's closing round trip (see :mod:`.held`): the claim is
        kept until then, and given back by the held write (or, should it fail, owed like a release)."""
        ...

    def release(self, claim: Claim) -> None:
        """Give the contact back without writing (a skip, a failure)."""
        ...

    def put(self, state: ContactState, *, previous: Previous = UNKNOWN, event: Event | None = None) -> None:
        """Store the record and index it by KlickTipp id and e-mail (dropping stale index entries);
        ``previous`` (the record it replaces, if the caller read it) saves a read; ``event`` marks an
        applied event in the same round trip."""
        ...

    def find(self, *, klicktipp_id: str | None = None, email: str | None = None) -> ContactState | None:
        """The record for a KlickTipp id or an e-mail address, if ktsync knows it."""
        ...

    def oldest(self, *, before: float, limit: int, source: str | None = None) -> list[tuple[str, str]]:
        """(source, crm_contact_id) of live contacts last updated before ``before``, oldest first."""
        ...

    def seen_event(self, source: str, event_id: str) -> bool: ...

    def mark_event(self, source: str, event_id: str, ttl: int) -> None: ...

    def forget_addresses(self, addresses: Collection[str]) -> int:
        """Erasure: drop the e-mail index entries of these addresses and the applied-event markers whose
        event id contains one (producers choose event ids); how many keys went."""
        ...


@contextmanager
def claimed(
    store: StateStore, source: str, crm_contact_id: str, event_id: str | None, *, lease: float, wait: float
) -> Iterator[Claim]:
    """Claim the contact, waiting up to ``wait`` seconds (LockBusy after); always given back."""
    deadline = time.monotonic() + wait
    while (claim := store.claim(source, crm_contact_id, event_id, lease=lease)) is None:
        if time.monotonic() >= deadline:
            raise LockBusy(f"contact:{source}:{crm_contact_id}")
        time.sleep(CLAIM_POLL)
    try:
        yield claim
    finally:
        if not claim.done:
            store.release(claim)


CLAIM_POLL = 0.02
