"""Where KlickTipp reference data (fields, opt-in processes, tags) is cached: Redis, shared by all workers.

Key layout: ``{p}:ref:{kind}`` hash (``fields``: key -> label, ``lists``: id -> name, ``tags``:
name -> id) with a TTL. A sentinel entry marks a loaded but empty mapping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

import redis

LOADED = "\x00loaded"


class ReferenceCache(Protocol):
    def load(self, kind: str) -> dict[str, str] | None:
        """The cached mapping, or None when it is absent or expired."""
        ...

    def store(self, kind: str, mapping: Mapping[str, str], ttl: float) -> None: ...

    def add(self, kind: str, key: str, value: str) -> None:
        """Add one entry to a cached mapping (e.g. a tag just created), keeping its expiry."""
        ...

    def drop(self, kind: str) -> None: ...


class RedisReferenceCache:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix

    def load(self, kind: str) -> dict[str, str] | None:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(f"{self._p}:ref:{kind}"))
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items() if k.decode() != LOADED}

    def store(self, kind: str, mapping: Mapping[str, str], ttl: float) -> None:
        key = f"{self._p}:ref:{kind}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=cast(Any, {LOADED: "1", **mapping}))  # redis-py's Mapping is invariant
        pipe.pexpire(key, int(ttl * 1000))
        pipe.execute()

    def add(self, kind: str, key: str, value: str) -> None:
        # Only into a loaded mapping: a lone entry must not pass for a complete (but expired) one.
        if self._redis.hexists(f"{self._p}:ref:{kind}", LOADED):
            self._redis.hset(f"{self._p}:ref:{kind}", key, value)

    def drop(self, kind: str) -> None:
        self._redis.delete(f"{self._p}:ref:{kind}")


class MemoryReferenceCache:
    """In-memory twin of :class:`RedisReferenceCache`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[dict[str, str], float]] = {}
        self._clock = clock
        self._mutex = threading.Lock()

    def load(self, kind: str) -> dict[str, str] | None:
        with self._mutex:
            entry = self._entries.get(kind)
            if entry is None or entry[1] <= self._clock():
                return None
            return dict(entry[0])

    def store(self, kind: str, mapping: Mapping[str, str], ttl: float) -> None:
        with self._mutex:
            self._entries[kind] = (dict(mapping), self._clock() + ttl)

    def add(self, kind: str, key: str, value: str) -> None:
        with self._mutex:
            if kind in self._entries:
                self._entries[kind][0][key] = value

    def drop(self, kind: str) -> None:
        with self._mutex:
            self._entries.pop(kind, None)
