"""Redis-backed contact state store.

Key layout (``{p}`` is the key prefix):

* ``{p}:contact:{source}:{crm_contact_id}`` string: JSON of :class:`ContactState`
* ``{p}:idx:kt:{klicktipp_id}``              string: ``{source}\\x1f{crm_contact_id}``
* ``{p}:idx:email:{email}``                  string: ``{source}\\x1f{crm_contact_id}``
* ``{p}:event:{source}:{event_id}``          string ``1`` with a TTL: the event was applied
* ``{p}:idx:updated``                        sorted set: ``{source}\\x1f{crm_contact_id}`` by last update
  (live contacts only; reconciliation reads the oldest from it)
* ``{p}:lock:contact:{source}:{crm_contact_id}`` the claim (a leased lock; see ``worker/locks.py``),
  registered in ``{p}:session:{sid}:locks`` when the store works for a worker session, so that a
  worker that died gives its contacts back as soon as it is found dead, not after the lease

A claim is one round trip (acquire-and-register, the record, the event marker — plus any release
still owed from a Redis outage, see :class:`ktsync.worker.locks.Unreleased`), a commit another (the writes
and the release in one MULTI) — or none of its own when the task holds it for its closing round trip
(:meth:`RedisStateStore.hold`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

import redis

from ktsync.core.keyglob import keys_containing
from ktsync.worker.locks import (
    ACQUIRE_LUA,
    TRANSIENT,
    Unreleased,
    lock_keys,
    owner_token,
    pay,
    stage_releases,
)
from ktsync.worker.state.base import UNKNOWN, Claim, ContactState, Event, Previous

SEPARATOR = "\x1f"
SCAN_COUNT = 1000


class RedisStateStore:
    """``session``: the worker session claims are held for (registered with it); None: unregistered."""

    def __init__(self, client: redis.Redis, prefix: str = "ktsync", *, session: str | None = None) -> None:
        self._redis = client
        self._p = prefix
        self._session = session
        self._unreleased = Unreleased()

    def _lock(self, source: str, crm_contact_id: str) -> list[str]:
        """The claim's lock key, and the session's lock registry when there is a session."""
        return lock_keys(self._p, f"contact:{source}:{crm_contact_id}", self._session)

    def claim(self, source: str, crm_contact_id: str, event_id: str | None, *, lease: float) -> Claim | None:
        token, keys = owner_token(self._session), self._lock(source, crm_contact_id)
        owed = self._unreleased.take()
        pipe = self._redis.pipeline(transaction=False)
        stage_releases(pipe, owed)
        if self._session is None:
            pipe.set(keys[0], token, nx=True, px=int(lease * 1000))
        else:  # EVAL, not EVALSHA: the script registry would cost a SCRIPT EXISTS round trip per pipeline
            pipe.eval(ACQUIRE_LUA, len(keys), *keys, token, int(lease * 1000))
        pipe.get(self.key(source, crm_contact_id))
        pipe.exists(f"{self._p}:event:{source}:{event_id}") if event_id else pipe.echo(b"0")
        try:
            *_, locked, raw, seen = pipe.execute()
        except TRANSIENT:
            self._unreleased.put_back(owed)
            self._unreleased.add(keys, token)  # it may have been taken before the answer was lost
            raise
        if not locked:
            return None
        return Claim(
            source, crm_contact_id, token, ContactState.from_json(raw) if raw else None, bool(int(seen))
        )

    def commit(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> None:
        pipe = self._redis.pipeline(transaction=True)
        self.stage_commit(pipe, claim, state, event)
        self._execute_release(pipe, self._lock(claim.source, claim.crm_contact_id), claim.token)
        claim.done = True

    def hold(self, claim: Claim, state: ContactState | None, *, event: Event | None = None) -> _HeldCommit:
        claim.done = True
        return _HeldCommit(self, claim, state, event)

    def stage_commit(self, pipe: Any, claim: Claim, state: ContactState | None, event: Event | None) -> None:
        """Add a commit's writes and the claim's release to ``pipe`` (a MULTI: they go together)."""
        if state is not None:
            self._stage_put(pipe, state, claim.stored)
        if event is not None:
            pipe.set(f"{self._p}:event:{claim.source}:{event[0]}", b"1", ex=event[1])
        stage_releases(pipe, [(self._lock(claim.source, claim.crm_contact_id), claim.token)])

    def owe_release(self, claim: Claim) -> None:
        """The round trip that was to release the claim failed: retry it later (see ``Unreleased``)."""
        self._unreleased.add(self._lock(claim.source, claim.crm_contact_id), claim.token)

    def release(self, claim: Claim) -> None:
        keys = self._lock(claim.source, claim.crm_contact_id)
        pipe = self._redis.pipeline(transaction=False)
        stage_releases(pipe, [(keys, claim.token)])
        self._execute_release(pipe, keys, claim.token)
        claim.done = True

    def _execute_release(self, pipe: Any, keys: list[str], token: str) -> None:
        try:
            pipe.execute()
        except TRANSIENT:
            self._unreleased.add(keys, token)  # owed: retried with the next claim, or by the heartbeat
            raise

    def release_pending(self) -> int:
        """Retry releases that failed while Redis was away; how many were owed."""
        return pay(self._redis, self._unreleased)

    def key(self, source: str, crm_contact_id: str) -> str:
        """The Redis key of the contact's record."""
        return f"{self._p}:contact:{source}:{crm_contact_id}"

    def get(self, source: str, crm_contact_id: str) -> ContactState | None:
        raw = cast(bytes | None, self._redis.get(self.key(source, crm_contact_id)))
        return ContactState.from_json(raw) if raw else None

    def load(
        self, source: str, crm_contact_id: str, event_id: str | None
    ) -> tuple[ContactState | None, bool]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self.key(source, crm_contact_id))
        pipe.exists(f"{self._p}:event:{source}:{event_id}") if event_id else pipe.echo(b"0")
        raw, seen = pipe.execute()
        return (ContactState.from_json(raw) if raw else None), bool(int(seen))

    def put(self, state: ContactState, *, previous: Previous = UNKNOWN, event: Event | None = None) -> None:
        if previous is UNKNOWN:
            previous = self.get(state.source, state.crm_contact_id)
        pipe = self._redis.pipeline(transaction=True)
        if event is not None:
            pipe.set(f"{self._p}:event:{state.source}:{event[0]}", b"1", ex=event[1])
        self._stage_put(pipe, state, previous if isinstance(previous, ContactState) else None)
        pipe.execute()

    def _stage_put(self, pipe: Any, state: ContactState, previous: ContactState | None) -> None:
        owner = f"{state.source}{SEPARATOR}{state.crm_contact_id}"
        if previous is not None and previous.email and previous.email != state.email:
            pipe.delete(f"{self._p}:idx:email:{previous.email}")
        pipe.set(self.key(state.source, state.crm_contact_id), state.to_json())
        if state.klicktipp_id:
            pipe.set(f"{self._p}:idx:kt:{state.klicktipp_id}", owner)
        if state.email:
            pipe.set(f"{self._p}:idx:email:{state.email}", owner)
        if state.is_tombstone:
            pipe.zrem(f"{self._p}:idx:updated", owner)
        else:
            pipe.zadd(f"{self._p}:idx:updated", {owner: state.updated_at})

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

    def forget_addresses(self, addresses: Collection[str]) -> int:
        """One SCAN of the key space per address (an erasure is rare; nothing indexes event ids)."""
        index, events = f"{self._p}:idx:email:", f"{self._p}:event:"
        doomed: set[bytes] = set()
        for address in {a.lower() for a in addresses if a}:
            for key, name in keys_containing(self._redis, f"{self._p}:", address):
                indexed = name.startswith(index) and name[len(index) :].lower() == address
                if indexed or name.startswith(events):
                    doomed.add(key)
        return int(self._redis.delete(*doomed)) if doomed else 0


@dataclass(frozen=True)
class _HeldCommit:
    """A commit held for the task's closing round trip (see :mod:`ktsync.worker.state.held`)."""

    store: RedisStateStore
    claim: Claim
    state: ContactState | None
    event: Event | None

    def stage(self, pipe: Any) -> None:
        self.store.stage_commit(pipe, self.claim, self.state, self.event)

    def lost(self) -> None:
        self.store.owe_release(self.claim)
