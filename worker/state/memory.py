"""In-memory twin of the Redis state store, for unit tests."""

from __future__ import annotations

from worker.state.base import ContactState


class MemoryStateStore:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], ContactState] = {}
        self._by_klicktipp_id: dict[str, tuple[str, str]] = {}
        self._by_email: dict[str, tuple[str, str]] = {}
        self._events: set[tuple[str, str]] = set()

    def get(self, source: str, crm_contact_id: str) -> ContactState | None:
        return self._records.get((source, crm_contact_id))

    def put(self, state: ContactState) -> None:
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
