"""What workers record for operators, in Redis (shared by all workers, read by `ktsync metrics`/`status`).

Key layout (``{p}`` the key prefix):

* ``{p}:metrics:calls``   hash: ``{operation}|{status}`` -> count (status ``none`` when no answer came)
* ``{p}:metrics:limiter`` hash: ``waits`` (calls that waited for the budget), ``wait_seconds`` (total),
  ``throttled`` (tasks requeued because the wait would have been long)
* calls per lane: see :mod:`ktsync.worker.lanemetrics`
* ``{p}:series:{t}``      the last hour per lane in minute windows (calls, 429s, tasks done,
  latency): see :mod:`ktsync.core.series`
* ``{p}:timeline:{source}:{crm_contact_id}`` list, newest first, capped: the contact's history
  (events received, KlickTipp calls with their result, outcomes, dead letters, replays)
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from ktsync.core import series
from ktsync.core.lanes import Lane
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.lanemetrics import stage_calls

TIMELINE_CAP = 200
TIMELINE_TTL = 90 * 24 * 3600


@dataclass
class _Task:
    """What one task recorded so far (written to Redis once, when it ends)."""

    contact: tuple[str, str] | None
    lane: Lane = Lane.LIVE
    entries: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    limiter: Counter[str] = field(default_factory=Counter)  # waits, throttled (counts)
    wait_seconds: float = 0.0
    closing: list[Callable[[Any], None]] = field(default_factory=list)  # other parts' writes (at_end)


class Telemetry:
    """Records calls, limiter waits and per-contact timelines.

    During a task (``begin`` … ``end``) everything is buffered in the thread and written in one
    pipelined round trip at the end, together with whatever the caller adds (the task's outcome
    counter, its delivery guard, its held writes) and other parts stage with :meth:`at_end`:
    telemetry must not cost the sync its throughput.
    """

    def __init__(
        self, client: redis.Redis, prefix: str = "ktsync", clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._p = prefix
        self._clock = clock
        self._local = threading.local()

    def begin(self, source: str, crm_contact_id: str, lane: Lane = Lane.LIVE) -> None:
        """The current thread now works for this contact, in this lane (until ``end``)."""
        self._local.task = _Task((source, crm_contact_id) if source and crm_contact_id else None, lane)

    def lane(self) -> Lane:
        """The lane of the current task (live outside a task)."""
        task = self._task()
        return task.lane if task is not None else Lane.LIVE

    def _task(self) -> _Task | None:
        task: _Task | None = getattr(self._local, "task", None)
        return task

    def current(self) -> object | None:
        """The task running on this thread (the same object from ``begin`` to ``end``), None outside one."""
        return self._task()

    def at_end(self, stage: Callable[[Any], None]) -> None:
        """Have ``stage(pipe)`` add another part's writes to the current task's closing round trip
        (the rate limiter's unused spare tokens); outside a task it is written at once."""
        task = self._task()
        if task is not None:
            task.closing.append(stage)
            return
        pipe = self._redis.pipeline(transaction=False)
        stage(pipe)
        pipe.execute()

    def call(self, record: CallRecord) -> None:
        """The client's observer: count the call, and note it on the contact's timeline."""
        status = str(record.status) if record.status is not None else "none"
        entry = {"kind": "call", "operation": record.operation, "method": record.method, "path": record.path,
                 "status": record.status, "ms": round(record.elapsed_s * 1000, 1),
                 "error": record.error.reason if record.error else None}  # fmt: skip
        task = self._task()
        if task is None:  # a call outside any task (start-up checks): write it at once
            self._redis.hincrby(f"{self._p}:metrics:calls", f"{record.operation}|{status}", 1)
            return
        task.calls[f"{record.operation}|{status}"] += 1
        self._buffer(task, entry)

    def calls_made(self) -> int:
        """KlickTipp calls the current task has made so far (0 outside a task)."""
        task = self._task()
        return sum(task.calls.values()) if task is not None else 0

    def note(self, kind: str, **details: Any) -> None:
        """A timeline entry for the current task's contact: ``event``, ``outcome``, ``dead_letter``..."""
        task = self._task()
        if task is not None:
            self._buffer(task, {"kind": kind, **details})

    def _buffer(self, task: _Task, entry: Mapping[str, Any]) -> None:
        if task.contact is not None:
            task.entries.append(json.dumps({"at": self._clock(), **entry}, sort_keys=True, default=str))

    def end(
        self, pipe: Any, *, forget: bool = False, latency: float | None = None, done: bool = True
    ) -> None:
        """Add the task's records to ``pipe`` (the caller executes it); ``forget`` purges the timeline;
        ``latency``: the applied change's seconds since it was enqueued, ``done``: whether the task
        reached an outcome (both for the console's series)."""
        task = self._task()
        self._local.task = None
        if task is None:
            return
        for stage in task.closing:
            stage(pipe)
        for name, count in task.calls.items():
            pipe.hincrby(f"{self._p}:metrics:calls", name, count)
        calls, now = sum(task.calls.values()), self._clock()
        stage_calls(pipe, self._p, task.lane, calls, now)
        series.stage(pipe, self._p, task.lane, now, calls=calls, throttled=throttled_calls(task.calls), done=int(done),
                     latency=latency)  # fmt: skip
        self._stage_limiter(pipe, task.limiter, task.wait_seconds)
        if task.contact is None:
            return
        key = timeline_key(self._p, *task.contact)
        if forget:
            pipe.delete(key)  # personal history goes with the personal data
        elif task.entries:
            pipe.lpush(key, *task.entries)
            pipe.ltrim(key, 0, TIMELINE_CAP - 1)
            pipe.expire(key, TIMELINE_TTL)

    def waited(self, seconds: float) -> None:
        """The rate limiter's ``on_wait``: how long a call waited for the budget (only real waits).
        Within a task it is written with the task's records at the end."""
        if seconds <= 0.001:
            return
        self._limiter(Counter(waits=1), seconds)

    def throttled(self) -> None:
        """A task gave up waiting for the budget and was deferred."""
        self._limiter(Counter(throttled=1), 0.0)

    def _limiter(self, counts: Counter[str], seconds: float) -> None:
        task = self._task()
        if task is not None:
            task.limiter.update(counts)
            task.wait_seconds += seconds
            return
        pipe = self._redis.pipeline(transaction=False)
        self._stage_limiter(pipe, counts, seconds)
        pipe.execute()

    def _stage_limiter(self, pipe: Any, counts: Mapping[str, int], seconds: float) -> None:
        key = f"{self._p}:metrics:limiter"
        for name, count in counts.items():
            pipe.hincrby(key, name, count)
        if seconds > 0:
            pipe.hincrbyfloat(key, "wait_seconds", seconds)


def throttled_calls(calls: Mapping[str, int]) -> int:
    """How many of a task's calls (``{operation}|{status}`` -> count) KlickTipp answered with 429."""
    return sum(count for name, count in calls.items() if name.rpartition("|")[2] == "429")


def timeline_key(prefix: str, source: str, crm_contact_id: str) -> str:
    return f"{prefix}:timeline:{source}:{crm_contact_id}"


def read_timeline(client: redis.Redis, prefix: str, source: str, crm_contact_id: str) -> list[dict[str, Any]]:
    """Newest first."""
    raw = cast(list[bytes], client.lrange(timeline_key(prefix, source, crm_contact_id), 0, -1))
    return [json.loads(item) for item in raw]


def read_calls(client: redis.Redis, prefix: str) -> dict[tuple[str, str], int]:
    """(operation, status) -> count."""
    raw = cast(dict[bytes, bytes], client.hgetall(f"{prefix}:metrics:calls"))
    pairs = (k.decode().split("|", 1) for k in raw)
    return {(op, status): int(raw[f"{op}|{status}".encode()]) for op, status in pairs}


def read_limiter(client: redis.Redis, prefix: str) -> dict[str, float]:
    raw = cast(dict[bytes, bytes], client.hgetall(f"{prefix}:metrics:limiter"))
    return {k.decode(): float(v) for k, v in raw.items()}
