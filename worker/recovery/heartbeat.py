"""The worker's heartbeat: every few seconds, "alive" and the delivery tags it holds, written to Redis.

It runs in the worker's main process (where Celery's consumer and its kombu channel live, also with
the prefork pool), in a thread of its own, and keeps beating across broker reconnects. Each beat also
gives back the locks of pool processes of this worker that died (a killed prefork child), and retries
lock releases of this process that failed while Redis was away (see :class:`ktsync.worker.locks.Unreleased`),
at once instead of after their lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import redis

from ktsync.worker.locks import token_pid
from ktsync.worker.recovery import store
from ktsync.worker.recovery.decide import dead_holders
from ktsync.worker.recovery.keys import Keys, slot_prefix
from ktsync.worker.session import WorkerSession

log = logging.getLogger(__name__)

HeldTags = Callable[[], frozenset[str]]
COPY_TRIES = 20  # another thread changes these collections while we copy them; it settles in microseconds


class Pulse:
    """Since when (monotonic seconds) this worker's heartbeats go through without a failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.healthy_since: float | None = None

    def beat(self, now: float) -> None:
        with self._lock:
            if self.healthy_since is None:
                self.healthy_since = now

    def failed(self) -> None:
        with self._lock:
            self.healthy_since = None


def _copy(items: Callable[[], Iterable[Any]]) -> list[Any]:
    for _ in range(COPY_TRIES):
        try:
            return list(items())
        except RuntimeError:  # changed size during iteration: the consumer thread is busy, try again
            continue
    raise RuntimeError("could not copy the consumer's deliveries")


def consumer_held(consumer: Any) -> HeldTags:
    """Tags ``consumer`` (Celery's) holds: its task channel's deliveries not yet acked (read afresh at
    every beat: a reconnect makes a new channel), plus the tasks still running — after a Redis restart
    those came from the old channel, whose acks are lost; they must not run twice at the same time."""
    from celery.worker import state  # the worker's own registry of running requests

    def held() -> frozenset[str]:
        qos = getattr(getattr(getattr(consumer, "task_consumer", None), "channel", None), "qos", None)
        tags: set[str] = set()
        if qos is not None:
            dirty = set(_copy(lambda: qos._dirty))  # acked, not yet flushed
            tags.update(str(t) for t in _copy(lambda: qos._delivered) if t not in dirty)
        for request in _copy(lambda: state.active_requests):
            tag = getattr(getattr(request, "message", None), "delivery_tag", None)
            if tag is not None:
                tags.add(str(tag))
        return frozenset(tags)

    return held


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Heartbeat:
    """One beat per call of :meth:`beat_once`; ``entry`` is the registry entry (``beat`` is added)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        session: WorkerSession,
        *,
        entry: dict[str, Any],
        held: HeldTags,
        timeout: float,
        owed: Sequence[Callable[[], int]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``owed``: functions retrying this process's failed lock releases (``release_pending``)."""
        self._redis, self._keys, self._session = client, keys, session
        self._entry, self._held, self._timeout, self._clock = entry, held, timeout, clock
        self._owed = owed
        self.pulse = Pulse()
        self._beats = 0
        self._last_held: frozenset[str] = frozenset()

    def beat_once(self) -> None:
        try:
            held = self._last_held = self._held()
        except RuntimeError:  # the consumer kept changing while we copied: what it held a beat ago
            held = self._last_held
        try:
            entry = {**self._entry, "beat": time.time()}
            new, locks = store.beat(
                self._redis, self._keys, self._session.id, entry, held=held, timeout=self._timeout
            )
        except redis.RedisError:
            self.pulse.failed()
            raise
        self.pulse.beat(self._clock())
        if new and self._beats:
            log.warning("recovery: this worker (session %s) was presumed dead after a heartbeat gap; "
                        "its tasks and locks were reclaimed by another worker", self._session.id)  # fmt: skip
        self._beats += 1
        self._release_dead_children(locks)
        for pay in self._owed:
            pay()

    def _release_dead_children(self, locks: dict[str, str]) -> None:
        dead = dead_holders(locks, own_pid=os.getpid(), pid_of=token_pid, alive=process_alive)
        by_pid: dict[int | None, dict[str, str]] = {}
        for key, token in dead.items():
            by_pid.setdefault(token_pid(token), {})[key] = token
        for pid, held in by_pid.items():
            released, slots = store.release_held(
                self._redis, self._keys, self._session.id, held, account=str(self._entry.get("account", "")),
                slots=slot_prefix(self._session.id, pid),
            )  # fmt: skip
            store.count(self._redis, self._keys, {"released_locks": released, "released_slots": slots})
            log.warning("recovery: pool process %s died holding %d lock(s); %d released, %d limiter slot(s)",
                        pid, len(held), released, slots)  # fmt: skip

    def deregister(self) -> None:
        """A clean stop: leave the registry, and give back whatever is still registered to us."""
        taken = store.deregister(self._redis, self._keys, self._session.id)
        if taken is not None:
            store.release_held(self._redis, self._keys, self._session.id, taken.locks, account=str(self._entry.get("account", "")),
                               slots=slot_prefix(self._session.id))  # fmt: skip
