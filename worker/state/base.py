"""The contact state record and the interface of every state-store backend."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol


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
    occurred_at: float = 0.0  # of the last applied event
    subscription: str = "unknown"  # as KlickTipp last reported it
    updated_at: float = 0.0
    deleted_at: float | None = None

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
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["tags"] = sorted(self.tags)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ContactState:
        data: dict[str, Any] = json.loads(raw)
        return replace(cls(source=data.pop("source"), crm_contact_id=data.pop("crm_contact_id")), **{
            **data, "tags": frozenset(data.get("tags", ()))
        })  # fmt: skip


class StateStore(Protocol):
    def get(self, source: str, crm_contact_id: str) -> ContactState | None: ...

    def put(self, state: ContactState) -> None:
        """Store the record and index it by KlickTipp id and e-mail (dropping stale index entries)."""
        ...

    def find(self, *, klicktipp_id: str | None = None, email: str | None = None) -> ContactState | None:
        """The record for a KlickTipp id or an e-mail address, if ktsync knows it."""
        ...

    def oldest(self, *, before: float, limit: int, source: str | None = None) -> list[tuple[str, str]]:
        """(source, crm_contact_id) of live contacts last updated before ``before``, oldest first."""
        ...

    def seen_event(self, source: str, event_id: str) -> bool: ...

    def mark_event(self, source: str, event_id: str, ttl: int) -> None: ...
