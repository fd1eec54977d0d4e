"""Two guards against loops: poison messages, and a worker whose credential KlickTipp refuses.

* A message whose delivery killed the worker process (no attempt ever finished) is counted per
  task id; past ``deadletter.max_deliveries`` it is dead-lettered as *poison* instead of looping.
* While the worker's own credential is marked refused (see :mod:`ktsync.worker.credentials`), a task it
  receives goes straight back to its queue, for a healthy worker, without trying to log in.

Key layout: ``{p}:deliveries:{task_id}`` counter (1 day TTL); the refusal flag of the credential
(``{p}:credential:{c}:refused``), read in the same round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import redis

from ktsync.worker.credentials import refusal_key

DELIVERY_TTL = 24 * 3600


class Guards(Protocol):
    def delivered(self, task_id: str) -> int:
        """Count one more delivery of the task; how many there have been."""
        ...

    def admit(self, task_id: str) -> tuple[int, bool]:
        """``delivered``, and whether the worker's credential is refused, in one round trip."""
        ...

    def finished(self, task_id: str) -> None:
        """The attempt ended (well or badly) without killing the process."""
        ...


class RedisGuards:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync", *, credential: str = "") -> None:
        self._redis = client
        self._p = prefix
        self._refusal = refusal_key(prefix, credential)

    def delivered(self, task_id: str) -> int:
        key = f"{self._p}:deliveries:{task_id}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, DELIVERY_TTL)
        count, _ = pipe.execute()
        return int(count)

    def admit(self, task_id: str) -> tuple[int, bool]:
        key = f"{self._p}:deliveries:{task_id}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, DELIVERY_TTL)
        pipe.exists(self._refusal)
        count, _, refused = pipe.execute()
        return int(count), bool(refused)

    def finished(self, task_id: str) -> None:
        self._redis.delete(f"{self._p}:deliveries:{task_id}")


class MemoryGuards:
    """In-memory twin of :class:`RedisGuards`."""

    def __init__(self, refused: Callable[[], bool] = lambda: False) -> None:
        self._deliveries: dict[str, int] = {}
        self._refused = refused
        self._mutex = threading.Lock()

    def delivered(self, task_id: str) -> int:
        with self._mutex:
            self._deliveries[task_id] = self._deliveries.get(task_id, 0) + 1
            return self._deliveries[task_id]

    def admit(self, task_id: str) -> tuple[int, bool]:
        return self.delivered(task_id), self._refused()

    def finished(self, task_id: str) -> None:
        with self._mutex:
            self._deliveries.pop(task_id, None)
