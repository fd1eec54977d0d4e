"""Key queues: work whose budget is spent waits here, per fairness key — out of the broker's queues and
out of worker slots — and goes back to its lane's queue at the pace its budget allows.

A task the limiter refuses for longer than it may wait in place is *deferred* to the queue of its
fairness key (account + lane, see :mod:`ktsync.core.lanes`), with a release time taken from that key's
clock: releases of one key are spaced ``spacing`` apart (one token's time at the key's rate), so a
backlog comes back in order and at the budget's pace instead of all at once. The mover (see
:mod:`ktsync.worker.schedule`) publishes due entries to their queue, then removes them (a crash in between
repeats a task — idempotent — and never loses one). This is the model of Inngest's key queues: a
key whose budget is spent never stands in front of work that can run now.

Key layout (``{p}`` the key prefix, ``{k}`` a fairness key such as ``3f2a…:bulk``), Redis's clock in ms:

* ``{p}:kq:{k}``     sorted set: member = :class:`~ktsync.worker.schedule.Parked` JSON, score = release time
* ``{p}:kq:clock``   hash: ``{k}`` -> the next free release time of that key
* ``{p}:kq:keys``    set of the keys with deferred work
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, cast

import redis

from ktsync.core.broker import key_queue, key_queue_registry
from ktsync.worker.schedule import BATCH, Parked

# KEYS[1] key queue, KEYS[2] clocks hash, KEYS[3] registry; ARGV[1] fairness key, ARGV[2] member,
# ARGV[3] earliest delay ms, ARGV[4] spacing ms. Returns the release time (ms, Redis clock).
DEFER_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = math.max(now + tonumber(ARGV[3]), tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0'))
redis.call('HSET', KEYS[2], ARGV[1], due + tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], due, ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return due
"""

# KEYS[1] key queue; ARGV[1] limit. The members due now by Redis's clock.
DUE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"""

# KEYS[1] key queue, KEYS[2] clocks hash, KEYS[3] registry; ARGV[1] fairness key, ARGV[2] member.
# Forgets the key (and its clock) once its queue is empty, atomically with a concurrent defer.
REMOVE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


class KeyQueues(Protocol):
    def defer(self, key: str, entry: Parked, *, delay: float, spacing: float) -> float:
        """Queue ``entry`` under ``key``, released no sooner than ``delay`` seconds from now and
        ``spacing`` after the key's previous release; returns the release time (Unix seconds)."""
        ...

    def fairness_keys(self) -> list[str]:
        """The fairness keys with deferred work."""
        ...

    def due(self, key: str, limit: int = BATCH) -> list[Parked]: ...

    def remove(self, key: str, entry: Parked) -> None: ...

    def count(self, key: str) -> int: ...


class RedisKeyQueues:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix
        self._defer = client.register_script(DEFER_LUA)
        self._due = client.register_script(DUE_LUA)
        self._remove = client.register_script(REMOVE_LUA)

    def _keys(self, key: str) -> list[str]:
        return [key_queue(self._p, key), f"{self._p}:kq:clock", key_queue_registry(self._p)]

    def defer(self, key: str, entry: Parked, *, delay: float, spacing: float) -> float:
        args: list[str | int] = [key, entry.to_json(), max(0, int(delay * 1000)), max(0, int(spacing * 1000))]
        return int(cast(int, self._defer(keys=self._keys(key), args=args))) / 1000

    def fairness_keys(self) -> list[str]:
        return sorted(k.decode() for k in cast(set[bytes], self._redis.smembers(key_queue_registry(self._p))))

    def due(self, key: str, limit: int = BATCH) -> list[Parked]:
        raw = cast(list[bytes], self._due(keys=[key_queue(self._p, key)], args=[limit]))
        return [Parked.from_json(item) for item in raw]

    def remove(self, key: str, entry: Parked) -> None:
        self._remove(keys=self._keys(key), args=[key, entry.to_json()])

    def count(self, key: str) -> int:
        return int(self._redis.zcard(key_queue(self._p, key)))


class MemoryKeyQueues:
    """In-memory twin of :class:`RedisKeyQueues` (release times on the given clock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._queues: dict[str, dict[str, float]] = {}
        self._clocks: dict[str, float] = {}
        self._mutex = threading.Lock()

    def defer(self, key: str, entry: Parked, *, delay: float, spacing: float) -> float:
        with self._mutex:
            due = max(self._clock() + max(delay, 0.0), self._clocks.get(key, 0.0))
            self._clocks[key] = due + max(spacing, 0.0)
            self._queues.setdefault(key, {})[entry.to_json()] = due
            return due

    def fairness_keys(self) -> list[str]:
        with self._mutex:
            return sorted(self._queues)

    def due(self, key: str, limit: int = BATCH) -> list[Parked]:
        now = self._clock()
        with self._mutex:
            ready = sorted((due, raw) for raw, due in self._queues.get(key, {}).items() if due <= now)
        return [Parked.from_json(raw) for _, raw in ready[:limit]]

    def remove(self, key: str, entry: Parked) -> None:
        with self._mutex:
            queue = self._queues.get(key, {})
            queue.pop(entry.to_json(), None)
            if not queue:
                self._queues.pop(key, None)
                self._clocks.pop(key, None)

    def count(self, key: str) -> int:
        with self._mutex:
            return len(self._queues.get(key, {}))


def release_step(queues: KeyQueues, publish: Callable[[Parked], None]) -> Callable[[], int]:
    """The mover's step: publish every key's due entries (keys taken in turn), then forget them."""

    def step() -> int:
        moved = 0
        for key in queues.fairness_keys():
            for entry in queues.due(key):
                publish(entry)
                queues.remove(key, entry)
                moved += 1
        return moved

    return step
