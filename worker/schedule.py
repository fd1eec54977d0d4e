"""Delayed retries longer than a minute wait here, in Redis, and not in the broker.

A Celery countdown sits in the worker's memory and in kombu's ``unacked`` hash; one longer than the
broker's visibility timeout is redelivered again and again (celery#2481, kombu#337). So every delay
above ``retry.max_broker_countdown`` is parked in a sorted set and published again when due by a
mover thread that runs in every worker process (one at a time, under a leased lock).

Key layout: ``{p}:schedule`` sorted set, member = JSON ``{task, args, kwargs, id}``, score = due time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import redis

from ktsync.worker.locks import Locks
from ktsync.worker.ticker import Ticker

log = logging.getLogger(__name__)

MOVER_LOCK = "schedule-mover"
# Deferred work is released at its budget's pace, so the mover looks often (one cheap call per tick).
MOVER_INTERVAL = 0.2
BATCH = 500


@dataclass(frozen=True)
class Parked:
    """A task to publish again later, exactly as it would have been retried.

    ``queue`` is the queue it came from (its lane; empty in entries written before lanes: the live
    queue), ``enqueued_at`` the time its message was first enqueued (for latency and queue ages)."""

    task: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    queue: str = ""
    enqueued_at: float | None = None

    @property
    def message(self) -> Mapping[str, Any]:
        """The task's message (its first argument); empty for a task that carries none."""
        first = self.args[0] if self.args else None
        return first if isinstance(first, Mapping) else {}

    def to_json(self) -> str:
        data: dict[str, Any] = {"task": self.task, "args": list(self.args), "kwargs": dict(self.kwargs),
                                "id": self.id}  # fmt: skip
        if self.queue:
            data["queue"] = self.queue
        if self.enqueued_at is not None:
            data["enqueued_at"] = self.enqueued_at
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Parked:
        data = json.loads(raw)
        return cls(data["task"], tuple(data["args"]), data["kwargs"], data["id"], data.get("queue", ""),
                   data.get("enqueued_at"))  # fmt: skip


class Schedule(Protocol):
    def park(self, entry: Parked, due: float) -> None: ...

    def due(self, now: float, limit: int = BATCH) -> list[Parked]: ...

    def remove(self, entry: Parked) -> None: ...

    def count(self) -> int: ...


class RedisSchedule:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._key = f"{prefix}:schedule"

    def park(self, entry: Parked, due: float) -> None:
        self._redis.zadd(self._key, {entry.to_json(): due})

    def due(self, now: float, limit: int = BATCH) -> list[Parked]:
        raw = cast(list[bytes], self._redis.zrangebyscore(self._key, "-inf", now, start=0, num=limit))
        return [Parked.from_json(item) for item in raw]

    def remove(self, entry: Parked) -> None:
        self._redis.zrem(self._key, entry.to_json())

    def count(self) -> int:
        return int(self._redis.zcard(self._key))


class MemorySchedule:
    """In-memory twin of :class:`RedisSchedule`."""

    def __init__(self) -> None:
        self._entries: dict[str, float] = {}

    def park(self, entry: Parked, due: float) -> None:
        self._entries[entry.to_json()] = due

    def due(self, now: float, limit: int = BATCH) -> list[Parked]:
        ready = sorted((due, raw) for raw, due in self._entries.items() if due <= now)
        return [Parked.from_json(raw) for _, raw in ready[:limit]]

    def remove(self, entry: Parked) -> None:
        self._entries.pop(entry.to_json(), None)

    def count(self) -> int:
        return len(self._entries)


def move_due(schedule: Schedule, publish: Callable[[Parked], None], now: float) -> int:
    """Publish every due entry, then forget it (publish first: a crash in between repeats, never loses)."""
    moved = 0
    for entry in schedule.due(now):
        publish(entry)
        schedule.remove(entry)
        moved += 1
    return moved


class ScheduleMover:
    """A daemon thread moving due entries back to their queue; one mover at a time across workers.

    Each tick runs every ``step`` (parked retries, deferred key queues...) under one leased lock; a
    step returns how many tasks it moved."""

    def __init__(
        self, locks: Locks, steps: Sequence[Callable[[], int]], *, interval: float = MOVER_INTERVAL
    ) -> None:
        self._locks, self._steps = locks, steps
        self._ticker = Ticker("ktsync-schedule-mover", self._run_once, interval)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def tick(self) -> int:
        token = self._locks.acquire(MOVER_LOCK, lease=30)
        if token is None:
            return 0
        try:
            return sum(step() for step in self._steps)
        finally:
            self._locks.release(MOVER_LOCK, token)

    def _run_once(self) -> None:
        moved = self.tick()
        if moved:
            log.debug("schedule: %d delayed task(s) back on their queue", moved)


def parked_step(schedule: Schedule, publish: Callable[[Parked], None]) -> Callable[[], int]:
    """The mover's step for parked retries (due by this host's clock, as they were parked)."""
    return lambda: move_due(schedule, publish, time.time())
