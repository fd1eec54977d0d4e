"""Leased locks shared by every worker: one holder at a time, released by its owner or by expiry.

A lease (not a plain lock) means a worker that dies holding it blocks the others for at most the
lease. Key layout: ``{p}:lock:{name}`` string holding the owner's random token, with a PX expiry.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import redis

# KEYS[1] = lock key; ARGV[1] = the owner's token. Deletes the key only if we still own it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockBusy(Exception):
    """Someone else holds the lock; try again later."""

    reason = "lock_busy"


class Locks(Protocol):
    def acquire(self, name: str, lease: float) -> str | None:
        """The owner token if acquired, None if somebody else holds it."""
        ...

    def release(self, name: str, token: str) -> bool: ...


class RedisLocks:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix
        self._release = client.register_script(RELEASE_LUA)

    def acquire(self, name: str, lease: float) -> str | None:
        token = secrets.token_hex(8)
        acquired = self._redis.set(f"{self._p}:lock:{name}", token, nx=True, px=int(lease * 1000))
        return token if acquired else None

    def release(self, name: str, token: str) -> bool:
        return bool(self._release(keys=[f"{self._p}:lock:{name}"], args=[token]))


class MemoryLocks:
    """In-memory twin of :class:`RedisLocks` (leases expire on the given clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._mutex = threading.Lock()

    def acquire(self, name: str, lease: float) -> str | None:
        with self._mutex:
            current = self._held.get(name)
            if current and current[1] > self._clock():
                return None
            token = secrets.token_hex(8)
            self._held[name] = (token, self._clock() + lease)
            return token

    def release(self, name: str, token: str) -> bool:
        with self._mutex:
            current = self._held.get(name)
            if current and current[0] == token:
                del self._held[name]
                return True
            return False


@contextmanager
def held(locks: Locks, name: str, *, lease: float, wait: float, poll: float = 0.02) -> Iterator[None]:
    """Hold ``name`` for the block, waiting up to ``wait`` seconds; LockBusy if it stays taken."""
    deadline = time.monotonic() + wait
    token = locks.acquire(name, lease)
    while token is None:
        if time.monotonic() >= deadline:
            raise LockBusy(name)
        time.sleep(poll)
        token = locks.acquire(name, lease)
    try:
        yield
    finally:
        locks.release(name, token)
