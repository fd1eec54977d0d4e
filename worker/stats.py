"""Outcome counters (synced, dead-lettered, retried, ...) shared by every worker through Redis.

Key layout: ``{p}:stats`` hash, outcome name -> count.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, cast

import redis


class Stats(Protocol):
    def incr(self, outcome: str, amount: int = 1) -> None: ...

    def snapshot(self) -> dict[str, int]: ...


class RedisStats:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._key = f"{prefix}:stats"

    def incr(self, outcome: str, amount: int = 1) -> None:
        self._redis.hincrby(self._key, outcome, amount)

    def snapshot(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._key))
        return {key.decode(): int(value) for key, value in raw.items()}


class MemoryStats:
    """In-memory twin of :class:`RedisStats`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def incr(self, outcome: str, amount: int = 1) -> None:
        self._counts[outcome] += amount

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)
