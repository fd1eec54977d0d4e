"""Redis-backed dead-letter store, durable wherever Redis persists (the compose file turns on AOF).

Key layout (``{p}`` is the key prefix):

* ``{p}:dlq:entries`` hash: letter id -> JSON of :class:`DeadLetter`
* ``{p}:dlq:index``   sorted set: letter id scored by its last failure time (newest = highest)
* ``{p}:dlq:evicted`` counter: letters pushed out by the size cap or the age limit
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import cast

import redis

from ktsync.worker.deadletter.base import Bounds, DeadLetter, Filter, merge

SCAN_PAGE = 500


class RedisDeadLetterStore:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "ktsync",
        bounds: Bounds = Bounds(),  # noqa: B008
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._entries = f"{prefix}:dlq:entries"
        self._index = f"{prefix}:dlq:index"
        self._evicted = f"{prefix}:dlq:evicted"
        self._bounds = bounds
        self._clock = clock

    def add(self, letter: DeadLetter) -> None:
        stored = merge(self.get(letter.id), letter)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._entries, letter.id, json.dumps(stored.to_dict(), sort_keys=True))
        pipe.zadd(self._index, {letter.id: stored.last_failed_at})
        pipe.execute()
        self._evict()

    def _evict(self) -> None:
        too_old = cast(
            list[bytes], self._redis.zrangebyscore(self._index, "-inf", self._clock() - self._bounds.max_age)
        )
        overflow = int(self._redis.zcard(self._index)) - len(too_old) - self._bounds.max_entries
        if overflow > 0:
            too_old += cast(
                list[bytes], self._redis.zrange(self._index, len(too_old), len(too_old) + overflow - 1)
            )
        if too_old:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(self._entries, *too_old)
            pipe.zrem(self._index, *too_old)
            pipe.incrby(self._evicted, len(too_old))
            pipe.execute()

    def get(self, letter_id: str) -> DeadLetter | None:
        raw = cast(bytes | None, self._redis.hget(self._entries, letter_id))
        return DeadLetter.from_dict(json.loads(raw)) if raw else None

    def list(self, where: Filter = Filter(), limit: int = 100) -> list[DeadLetter]:  # noqa: B008
        floor = where.since if where.since is not None else "-inf"
        found: list[DeadLetter] = []
        offset = 0
        while len(found) < limit:
            ids = cast(
                list[bytes],
                self._redis.zrevrangebyscore(self._index, "+inf", floor, start=offset, num=SCAN_PAGE),
            )
            if not ids:
                break
            offset += len(ids)
            raws = cast(list[bytes | None], self._redis.hmget(self._entries, ids))
            letters = (DeadLetter.from_dict(json.loads(raw)) for raw in raws if raw)
            found.extend(letter for letter in letters if where.matches(letter))
        return found[:limit]

    def count(self) -> int:
        return int(self._redis.zcard(self._index))

    def remove(self, letter_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._entries, letter_id)
        pipe.zrem(self._index, letter_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def remove_many(self, letter_ids: Collection[str]) -> int:
        ids = sorted(set(letter_ids))
        if not ids:
            return 0
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._entries, *ids)
        pipe.zrem(self._index, *ids)
        removed, _ = pipe.execute()
        return int(removed)

    def note_replay(self, letter_id: str) -> None:
        letter = self.get(letter_id)
        if letter is not None:
            updated = replace(letter, replays=letter.replays + 1)
            self._redis.hset(self._entries, letter_id, json.dumps(updated.to_dict(), sort_keys=True))

    def evicted(self) -> int:
        return int(cast(bytes | None, self._redis.get(self._evicted)) or 0)
