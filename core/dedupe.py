"""Which webhook events were already delivered: claim, then commit or release (Redis, and a twin).

Key layout (``{p}`` = ``redis.key_prefix``): ``{p}:webhook:{vendor}:{id}`` holds either
``pending:<token>``, a claim by one request that expires after ``lease`` seconds, or ``done``, an
event that is in the queue, remembered for ``ttl`` seconds.

Per request: :meth:`Deduper.claim` every id in one round trip. An id whose key says ``done`` is a
duplicate (answered 200, not enqueued again). An id claimed by another request still running is
``in_flight``: that request may yet fail, so this one answers 503 and the vendor retries later,
instead of acknowledging an event that might never be enqueued. After the enqueue the request
commits its claims (``done``); when the enqueue fails it releases them, so the vendor's retry is
not mistaken for a duplicate. A request that dies in between leaves claims that expire.

The ids are the vendors' event ids (HubSpot's numbers, Close's ``ev_…``, a digest for Zoho), no
personal data, except where a generic producer puts an e-mail address into its ``event_id``: a privacy
deletion (GDPR erasure) calls :meth:`Deduper.forget` with the person's addresses.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import redis

from ktsync.core.keyglob import keys_containing

DONE = "done"
PENDING = "pending:"
DEFAULT_LEASE_SECONDS = 30
MEMORY_PURGE_AT = 100_000  # the twin drops expired entries once it holds this many

# KEYS: one per event id. ARGV[1]: this request's claim value, ARGV[2]: the lease in milliseconds.
# Returns per key "" when claimed now, else the value already there ("done" or another claim).
CLAIM_LUA = """
local found = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    found[i] = ''
  else
    found[i] = redis.call('GET', key) or ''
  end
end
return found
"""
# KEYS: keys this request claimed. ARGV[1]: its claim value. Deletes only keys still holding it.
RELEASE_LUA = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    released = released + redis.call('DEL', key)
  end
end
return released
"""


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ids claimed by this request, and those seen before."""

    vendor: str
    value: str
    claimed: tuple[str, ...] = ()
    done: frozenset[str] = field(default_factory=frozenset)
    in_flight: frozenset[str] = field(default_factory=frozenset)


class Deduper(Protocol):
    def claim(self, vendor: str, ids: Sequence[str]) -> Claim: ...

    def commit(self, claim: Claim) -> None: ...

    def release(self, claim: Claim) -> None: ...

    def forget(self, addresses: Collection[str]) -> int:
        """Drop every remembered id that contains one of these addresses (any letter case); how many."""
        ...


def _new_claim_value() -> str:
    return f"{PENDING}{uuid.uuid4().hex}"


def _sorted_claim(vendor: str, value: str, ids: Sequence[str], found: Sequence[str]) -> Claim:
    claimed = tuple(i for i, seen in zip(ids, found, strict=True) if not seen)
    done = frozenset(i for i, seen in zip(ids, found, strict=True) if seen == DONE)
    in_flight = frozenset(i for i, seen in zip(ids, found, strict=True) if seen and seen != DONE)
    return Claim(vendor=vendor, value=value, claimed=claimed, done=done, in_flight=in_flight)


class RedisDeduper:
    """The shared memory of every receiver process (the same Redis as the broker)."""

    def __init__(
        self, client: redis.Redis, key_prefix: str, *, ttl: int, lease: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._ttl = ttl
        self._lease_ms = max(1, int(lease * 1000))
        self._claim = client.register_script(CLAIM_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def key(self, vendor: str, event_id: str) -> str:
        return f"{self._prefix}:webhook:{vendor}:{event_id}"

    def claim(self, vendor: str, ids: Sequence[str]) -> Claim:
        value = _new_claim_value()
        unique = list(dict.fromkeys(ids))
        if not unique:
            return Claim(vendor=vendor, value=value)
        keys = [self.key(vendor, i) for i in unique]
        raw = cast(list[bytes], self._claim(keys=keys, args=[value, self._lease_ms]))
        return _sorted_claim(vendor, value, unique, [item.decode() for item in raw])

    def commit(self, claim: Claim) -> None:
        if not claim.claimed:
            return
        pipe = self._client.pipeline(transaction=False)
        for event_id in claim.claimed:
            pipe.set(self.key(claim.vendor, event_id), DONE, ex=self._ttl)
        pipe.execute()

    def release(self, claim: Claim) -> None:
        if claim.claimed:
            self._release(keys=[self.key(claim.vendor, i) for i in claim.claimed], args=[claim.value])

    def forget(self, addresses: Collection[str]) -> int:
        doomed: set[bytes] = set()
        for address in {a.lower() for a in addresses if a}:
            doomed.update(
                key for key, _ in keys_containing(self._client, f"{self._prefix}:webhook:", address)
            )
        return int(self._client.delete(*doomed)) if doomed else 0


class MemoryDeduper:
    """The in-memory twin (tests, a single process without Redis); same semantics, own clock."""

    def __init__(
        self, *, ttl: float, lease: float = DEFAULT_LEASE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._lease = lease
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def claim(self, vendor: str, ids: Sequence[str]) -> Claim:
        value = _new_claim_value()
        unique = list(dict.fromkeys(ids))
        found: list[str] = []
        with self._lock:
            now = self._clock()
            if len(self._entries) >= MEMORY_PURGE_AT:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            for event_id in unique:
                current = self._entries.get((vendor, event_id))
                if current is not None and current[1] > now:
                    found.append(current[0])
                else:
                    self._entries[(vendor, event_id)] = (value, now + self._lease)
                    found.append("")
        return _sorted_claim(vendor, value, unique, found)

    def commit(self, claim: Claim) -> None:
        with self._lock:
            expires = self._clock() + self._ttl
            for event_id in claim.claimed:
                self._entries[(claim.vendor, event_id)] = (DONE, expires)

    def release(self, claim: Claim) -> None:
        with self._lock:
            for event_id in claim.claimed:
                if self._entries.get((claim.vendor, event_id), ("", 0.0))[0] == claim.value:
                    del self._entries[(claim.vendor, event_id)]

    def forget(self, addresses: Collection[str]) -> int:
        wanted = {a.lower() for a in addresses if a}
        with self._lock:
            doomed = [key for key in self._entries if any(a in key[1].lower() for a in wanted)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)
