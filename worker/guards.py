"""Two circuit breakers against loops: poison messages and refused credentials.

* A message whose delivery killed the worker process (no attempt ever finished) is counted per
  task id; past ``deadletter.max_deliveries`` it is dead-lettered as *poison* instead of looping.
* When KlickTipp refuses the credentials (401/403 after the one re-login), the account's auth
  breaker opens for a while: tasks are dead-lettered as *auth* at once instead of each trying to log
  in again (KlickTipp limits sessions), and an alarm is logged.

Key layout: ``{p}:deliveries:{task_id}`` counter (1 day TTL), ``{p}:auth-open`` (TTL = breaker time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

DELIVERY_TTL = 24 * 3600


class Guards(Protocol):
    def delivered(self, task_id: str) -> int:
        """Count one more delivery of the task; how many there have been."""
        ...

    def admit(self, task_id: str) -> tuple[int, bool]:
        """``delivered`` and ``auth_breaker_open`` in one go (one round trip per task)."""
        ...

    def finished(self, task_id: str) -> None:
        """The attempt ended (well or badly) without killing the process."""
        ...

    def open_auth_breaker(self, seconds: float) -> None: ...

    def auth_breaker_open(self) -> bool: ...


class RedisGuards:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._p = prefix

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
        pipe.exists(f"{self._p}:auth-open")
        count, _, breaker = pipe.execute()
        return int(count), bool(breaker)

    def finished(self, task_id: str) -> None:
        self._redis.delete(f"{self._p}:deliveries:{task_id}")

    def open_auth_breaker(self, seconds: float) -> None:
        self._redis.set(f"{self._p}:auth-open", b"1", px=max(1, int(seconds * 1000)))

    def auth_breaker_open(self) -> bool:
        return bool(self._redis.exists(f"{self._p}:auth-open"))


class MemoryGuards:
    """In-memory twin of :class:`RedisGuards`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._deliveries: dict[str, int] = {}
        self._auth_open_until = 0.0
        self._clock = clock
        self._mutex = threading.Lock()

    def delivered(self, task_id: str) -> int:
        with self._mutex:
            self._deliveries[task_id] = self._deliveries.get(task_id, 0) + 1
            return self._deliveries[task_id]

    def admit(self, task_id: str) -> tuple[int, bool]:
        return self.delivered(task_id), self.auth_breaker_open()

    def finished(self, task_id: str) -> None:
        with self._mutex:
            self._deliveries.pop(task_id, None)

    def open_auth_breaker(self, seconds: float) -> None:
        self._auth_open_until = self._clock() + seconds

    def auth_breaker_open(self) -> bool:
        return self._clock() < self._auth_open_until
