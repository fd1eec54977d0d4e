"""Redis-backed contact state store.

Key layout (``{p}`` is the key prefix):

* ``{p}:contact:{source}:{crm_contact_id}`` string: JSON of :class:`ContactState`
* ``{p}:idx:kt:{klicktipp_id}``              string: ``{source}\\x1f{crm_contact_id}``
* ``{p}:idx:email:{email}``                  string: ``{source}\\x1f{crm_contact_id}``
* ``{p}:event:{source}:{event_id}``          string ``1`` with a TTL: the event was applied
* ``{p}:idx:updated``                        sorted set: ``{source}\\x1f{crm_contact_id}`` by last update
  (live contacts only; reconciliation reads the oldest from it)
"""

from __future__ import annotations

from typing import cast

import redis

from worker.state.base import ContactState

SEPARATOR = "\x1f"


class RedisStateStore:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix

    def _key(self, source: str, crm_contact_id: str) -> str:
        return f"{self._p}:contact:{source}:{crm_contact_id}"

    def get(self, source: str, crm_contact_id: str) -> ContactState | None:
        raw = cast(bytes | None, self._redis.get(self._key(source, crm_contact_id)))
        return ContactState.from_json(raw) if raw else None

    def put(self, state: ContactState) -> None:
        previous = self.get(state.source, state.crm_contact_id)
        owner = f"{state.source}{SEPARATOR}{state.crm_contact_id}"
        pipe = self._redis.pipeline(transaction=True)
        if previous and previous.email and previous.email != state.email:
            pipe.delete(f"{self._p}:idx:email:{previous.email}")
        pipe.set(self._key(state.source, state.crm_contact_id), state.to_json())
        if state.klicktipp_id:
            pipe.set(f"{self._p}:idx:kt:{state.klicktipp_id}", owner)
        if state.email:
            pipe.set(f"{self._p}:idx:email:{state.email}", owner)
        if state.is_tombstone:
            pipe.zrem(f"{self._p}:idx:updated", owner)
        else:
            pipe.zadd(f"{self._p}:idx:updated", {owner: state.updated_at})
        pipe.execute()

    def oldest(self, *, before: float, limit: int, source: str | None = None) -> list[tuple[str, str]]:
        """(source, crm_contact_id) of live contacts last updated before ``before``, oldest first."""
        found: list[tuple[str, str]] = []
        offset = 0
        while len(found) < limit:
            page = cast(
                list[bytes],
                self._redis.zrangebyscore(
                    f"{self._p}:idx:updated", "-inf", f"({before}", start=offset, num=1000
                ),
            )
            if not page:
                break
            offset += len(page)
            pairs = (tuple(member.decode().split(SEPARATOR, 1)) for member in page)
            found.extend((a, b) for a, b in pairs if source is None or a == source)
        return found[:limit]

    def find(self, *, klicktipp_id: str | None = None, email: str | None = None) -> ContactState | None:
        for index, value in (("kt", klicktipp_id), ("email", email)):
            if not value:
                continue
            owner = cast(bytes | None, self._redis.get(f"{self._p}:idx:{index}:{value}"))
            if owner:
                source, crm_contact_id = owner.decode().split(SEPARATOR, 1)
                return self.get(source, crm_contact_id)
        return None

    def seen_event(self, source: str, event_id: str) -> bool:
        return bool(self._redis.exists(f"{self._p}:event:{source}:{event_id}"))

    def mark_event(self, source: str, event_id: str, ttl: int) -> None:
        self._redis.set(f"{self._p}:event:{source}:{event_id}", b"1", ex=ttl)
