"""Leased locks shared by every worker: one holder at a time, released by its owner or by expiry.

A lease (not a plain lock) means a worker that dies holding it blocks the others for at most the
lease — or, for a worker with a session, only until another worker notices it died (see
:mod:`ktsync.worker.recovery`), which is why a session's locks are registered with it.

Key layout (``{p}`` the key prefix, ``{sid}`` the worker's session id):

* ``{p}:lock:{name}``              string: the owner's token, with a PX expiry (the lease)
* ``{p}:session:{sid}:locks``      hash: lock key -> token, every lock the session holds (written
  atomically with the acquire, removed with the release), so that a dead session's locks can be
  given back at once, each only if it still holds that token (compare-and-delete)

A session's tokens read ``{pid}.{random}``: the worker's main process gives back the locks of a pool
child that died (killed by the OOM killer, say) without waiting for their lease.

A release that fails because Redis is away (restarting, say) is not forgotten: it is kept in
:class:`Unreleased` and retried with the next lock call of the process (in the same round trip), or
by the worker's heartbeat. So is an acquire whose answer was lost: it may have taken the lock.
Retrying is always safe, since a release deletes only a lock that still holds its token.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import redis

from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import deployment_prefix_of

# KEYS[1] = lock key, KEYS[2] = the session's lock registry; ARGV[1] = token, ARGV[2] = lease ms.
# Takes the lock and registers it with the session in one step: a worker killed in between cannot
# leave a lock that nobody knows it held. Returns 1 when acquired, 0 when someone else holds it.
ACQUIRE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('HSET', KEYS[2], KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS[1] = lock key, KEYS[2] (optional) = the owner session's lock registry; ARGV[1] = the owner's
# token. Deletes the key only if we still own it; forgets it in the registry if the entry is ours
# (a lease that expired and was taken again by the same session has a newer token there).
RELEASE_LUA = """
if KEYS[2] and redis.call('HGET', KEYS[2], KEYS[1]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], KEYS[1])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def session_locks_key(prefix: str, session: str) -> str:
    """The hash of every lock ``session`` holds: lock key -> token, for every tenant (the registry is
    the deployment's: crash recovery reads one per session)."""
    return f"{deployment_prefix_of(prefix)}:session:{session}:locks"


def lock_keys(prefix: str, name: str, session: str | None) -> list[str]:
    """KEYS of the lock scripts: the lock, and the session's lock registry when there is a session."""
    key = f"{prefix}:lock:{name}"
    return [key] if session is None else [key, session_locks_key(prefix, session)]


def owner_token(session: str | None) -> str:
    """A fresh lock token; a session's carries the process id of its holder (see the module doc)."""
    random = secrets.token_hex(8)
    return f"{os.getpid()}.{random}" if session is not None else random


def token_pid(token: str) -> int | None:
    """The holder's process id in a session's token, None for a token without one."""
    pid, dot, _ = token.partition(".")
    return int(pid) if dot and pid.isdigit() else None


TRANSIENT = (redis.ConnectionError, redis.TimeoutError)  # Redis away: the command may or may not have run

Release = tuple[list[str], str]  # the keys of RELEASE_LUA, and the token


class Unreleased:
    """Releases this process still owes Redis (see the module doc); thread-safe."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owed: dict[str, Release] = {}  # by token: a release that failed twice is owed once

    def add(self, keys: list[str], token: str) -> None:
        with self._mutex:
            self._owed[token] = (keys, token)

    def take(self) -> list[Release]:
        with self._mutex:
            owed, self._owed = list(self._owed.values()), {}
        return owed

    def put_back(self, owed: list[Release]) -> None:
        with self._mutex:
            for keys, token in owed:
                self._owed.setdefault(token, (keys, token))


def stage_releases(pipe: Any, owed: list[Release]) -> None:
    """Add the owed releases to ``pipe`` (EVAL: no SCRIPT EXISTS round trip)."""
    for keys, token in owed:
        pipe.eval(RELEASE_LUA, len(keys), *keys, token)


def pay(client: redis.Redis, unreleased: Unreleased) -> int:
    """Retry the owed releases in one round trip; how many there were (kept owed if Redis is away)."""
    owed = unreleased.take()
    if owed:
        pipe = client.pipeline(transaction=False)
        stage_releases(pipe, owed)
        try:
            pipe.execute()
        except TRANSIENT:
            unreleased.put_back(owed)
            raise
    return len(owed)


class LockBusy(KtsyncError):
    """Someone else holds the lock; try again later."""

    reason = "lock_busy"


class Locks(Protocol):
    def acquire(self, name: str, lease: float) -> str | None:
        """The owner token if acquired, None if somebody else holds it."""
        ...

    def release(self, name: str, token: str) -> bool: ...


class RedisLocks:
    """``session``: the worker session the locks are held for (registered with it); None: unregistered."""

    def __init__(self, client: redis.Redis, prefix: str = "ktsync", *, session: str | None = None) -> None:
        self._redis = client
        self._p = prefix
        self._session = session
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._unreleased = Unreleased()

    def _keys(self, name: str) -> list[str]:
        return lock_keys(self._p, name, self._session)

    def acquire(self, name: str, lease: float) -> str | None:
        self.release_pending()
        token, keys = owner_token(self._session), self._keys(name)
        try:
            if self._session is None:
                acquired = self._redis.set(keys[0], token, nx=True, px=int(lease * 1000))
            else:
                acquired = self._acquire(keys=keys, args=[token, int(lease * 1000)])
        except TRANSIENT:
            self._unreleased.add(keys, token)  # it may have been taken before the answer was lost
            raise
        return token if acquired else None

    def release(self, name: str, token: str) -> bool:
        keys = self._keys(name)
        pipe = self._redis.pipeline(transaction=False)
        stage_releases(pipe, [(keys, token)])
        try:
            (released,) = pipe.execute()
        except TRANSIENT:
            self._unreleased.add(keys, token)
            raise
        return bool(released)

    def release_pending(self) -> int:
        """Retry releases that failed while Redis was away; how many were owed."""
        return pay(self._redis, self._unreleased)


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
