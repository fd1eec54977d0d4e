"""In-memory twin of the Redis state store, for unit tests."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ktsync.worker.state.base import UNKNOWN, Claim, ContactState, Event, Previous


class MemoryStateStore:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], ContactState] = {}
        self._by_klicktipp_id: dict[str, tuple[str, str]] = {}
        self._by_email: dict[str, tuple[str, str]] = {}
        self._events: set[tuple[str, str]] = set()
        self._claims: dict[tuple[str, str], str] = {}

    def claim(self, source: str, crm_contact_id: str, event_id: str | None, *, lease: float) -> Claim | None:
        key = (source, crm_contact_id)
        if key in self._claims:
            return None
        token = self._claims[key] = secrets.token_hex(8)
        stored, seen = self.load(source, crm_contact_id, event_id)
        return Claim(source, crm_contact_id, token, stored, seen)

    def commit(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> None:
        if state is not None:
            self.put(state, previous=claim.stored)
        if event is not None:
            self.mark_event(claim.source, event[0], event[1])
        self.release(claim)

    def hold(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> _HeldCommit:
        claim.done = True
        return _HeldCommit(self, claim, state, event)

    def release(self, claim: Claim) -> None:
        if self._claims.get((claim.source, claim.crm_contact_id)) == claim.token:
            del self._claims[(claim.source, claim.crm_contact_id)]
        claim.done = True

    def get(self, source: str, crm_contact_id: str) -> ContactState | None:
        return self._records.get((source, crm_contact_id))

    def load(
        self, source: str, crm_contact_id: str, event_id: str | None
    ) -> tuple[ContactState | None, bool]:
        return self.get(source, crm_contact_id), bool(event_id) and self.seen_event(source, event_id or "")

    def put(self, state: ContactState, *, previous: Previous = UNKNOWN, event: Event | None = None) -> None:
        if event is not None:
            self.mark_event(state.source, event[0], event[1])
        key = (state.source, state.crm_contact_id)
        previous = self._records.get(key)
        if previous and previous.email and previous.email != state.email:
            self._by_email.pop(previous.email, None)
        self._records[key] = state
        if state.klicktipp_id:
            self._by_klicktipp_id[state.klicktipp_id] = key
        if state.email:
            self._by_email[state.email] = key

    def oldest(self, *, before: float, limit: int, source: str | None = None) -> list[tuple[str, str]]:
        live = [r for r in self._records.values() if not r.is_tombstone and r.updated_at < before]
        live = [r for r in live if source is None or r.source == source]
        return [(r.source, r.crm_contact_id) for r in sorted(live, key=lambda r: r.updated_at)][:limit]

    def find(self, *, klicktipp_id: str | None = None, email: str | None = None) -> ContactState | None:
        key = self._by_klicktipp_id.get(klicktipp_id or "") or self._by_email.get(email or "")
        return self._records.get(key) if key else None

    def seen_event(self, source: str, event_id: str) -> bool:
        return (source, event_id) in self._events

    def mark_event(self, source: str, event_id: str, ttl: int) -> None:
        self._events.add((source, event_id))

    def forget_addresses(self, addresses: Collection[str]) -> int:
        wanted = {a.lower() for a in addresses if a}
        emails = [e for e in self._by_email if e.lower() in wanted]
        events = {(s, e) for s, e in self._events if any(a in e.lower() for a in wanted)}
        for email in emails:
            del self._by_email[email]
        self._events -= events
        return len(emails) + len(events)


@dataclass(frozen=True)
class _HeldCommit:
    """A commit held for the closing round trip: written when it is staged (there is no pipeline)."""

    store: MemoryStateStore
    claim: Claim
    state: ContactState | None
    event: Event | None

    def stage(self, pipe: Any) -> None:
        self.store.commit(self.claim, self.state, event=self.event)

    def lost(self) -> None:
        """Nothing is owed: memory is never away."""
