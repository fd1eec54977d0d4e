"""Redis-backed dead-letter store.

Key layout (``{p}`` is the configured key prefix, ``ktsync`` by default):

* ``{p}:dlq:entries`` hash: letter id -> JSON of :class:`DeadLetter`
* ``{p}:dlq:index``   sorted set: letter id scored by its last failure time (newest = highest)
"""

from __future__ import annotations

import json
from typing import cast

import redis

from worker.deadletter.base import DeadLetter


class RedisDeadLetterStore:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._entries = f"{prefix}:dlq:entries"
        self._index = f"{prefix}:dlq:index"

    def add(self, letter: DeadLetter) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._entries, letter.id, json.dumps(letter.to_dict(), sort_keys=True))
        pipe.zadd(self._index, {letter.id: letter.last_failed_at})
        pipe.execute()

    def get(self, letter_id: str) -> DeadLetter | None:
        raw = self._redis.hget(self._entries, letter_id)
        return DeadLetter.from_dict(json.loads(raw)) if raw else None

    def list(self, limit: int = 100) -> list[DeadLetter]:
        ids = cast(list[bytes], self._redis.zrevrange(self._index, 0, limit - 1))
        if not ids:
            return []
        raws = cast(list[bytes | None], self._redis.hmget(self._entries, ids))
        return [DeadLetter.from_dict(json.loads(raw)) for raw in raws if raw]

    def count(self) -> int:
        return int(self._redis.zcard(self._index))

    def remove(self, letter_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._entries, letter_id)
        pipe.zrem(self._index, letter_id)
        removed, _ = pipe.execute()
        return bool(removed)
