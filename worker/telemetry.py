"""What workers record for operators, in Redis (shared by all workers, read by `ktsync metrics`/`status`).

Key layout (``{p}`` the key prefix):

* ``{p}:metrics:calls``   hash: ``{operation}|{status}`` -> count (status ``none`` when no answer came)
* ``{p}:metrics:limiter`` hash: ``waits`` (calls that waited for the budget), ``wait_seconds`` (total),
  ``throttled`` (tasks requeued because the wait would have been long)
* ``{p}:timeline:{source}:{crm_contact_id}`` list, newest first, capped: the contact's history
  (events received, KlickTipp calls with their result, outcomes, dead letters, replays)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis

from worker.klicktipp.http import CallRecord

TIMELINE_CAP = 200
TIMELINE_TTL = 90 * 24 * 3600


class Telemetry:
    """Records calls, limiter waits and per-contact timelines (pipelined, one round trip per record)."""

    def __init__(
        self, client: redis.Redis, prefix: str = "ktsync", clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._p = prefix
        self._clock = clock
        self._local = threading.local()

    # -- which contact the current thread works for (set by the task) ---------------------------
    def begin(self, source: str, crm_contact_id: str) -> None:
        self._local.contact = (source, crm_contact_id) if source and crm_contact_id else None

    def end(self) -> None:
        self._local.contact = None

    def _contact(self) -> tuple[str, str] | None:
        contact: tuple[str, str] | None = getattr(self._local, "contact", None)
        return contact

    # -- recording ---------------------------------------------------------------------------------
    def call(self, record: CallRecord) -> None:
        """The client's observer: count the call, and note it on the contact's timeline."""
        status = str(record.status) if record.status is not None else "none"
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(f"{self._p}:metrics:calls", f"{record.operation}|{status}", 1)
        contact = self._contact()
        if contact is not None:
            entry = {"kind": "call", "operation": record.operation, "method": record.method, "path": record.path,
                     "status": record.status, "ms": round(record.elapsed_s * 1000, 1),
                     "error": record.error.reason if record.error else None}  # fmt: skip
            self._push(pipe, contact, entry)
        pipe.execute()

    def waited(self, seconds: float) -> None:
        """The rate limiter's ``on_wait``: how long a call waited for the budget."""
        if seconds <= 0.001:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(f"{self._p}:metrics:limiter", "waits", 1)
        pipe.hincrbyfloat(f"{self._p}:metrics:limiter", "wait_seconds", seconds)
        pipe.execute()

    def throttled(self) -> None:
        self._redis.hincrby(f"{self._p}:metrics:limiter", "throttled", 1)

    def note(self, source: str, crm_contact_id: str, kind: str, **details: Any) -> None:
        """A timeline entry: ``event`` received, ``outcome``, ``dead_letter``, ``replay``..."""
        if not source or not crm_contact_id:
            return
        pipe = self._redis.pipeline(transaction=False)
        self._push(pipe, (source, crm_contact_id), {"kind": kind, **details})
        pipe.execute()

    def _push(self, pipe: Any, contact: tuple[str, str], entry: Mapping[str, Any]) -> None:
        key = timeline_key(self._p, *contact)
        pipe.lpush(key, json.dumps({"at": self._clock(), **entry}, sort_keys=True, default=str))
        pipe.ltrim(key, 0, TIMELINE_CAP - 1)
        pipe.expire(key, TIMELINE_TTL)

    def forget(self, source: str, crm_contact_id: str) -> None:
        """Purge a contact's timeline (with its state, on deletion)."""
        self._redis.delete(timeline_key(self._p, source, crm_contact_id))


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
