"""Redis-backed dead-letter store, durable wherever Redis persists (the compose file turns on AOF).

Key layout (``{p}`` is the key prefix):

* ``{p}:dlq:entries`` hash: letter id -> JSON of :class:`DeadLetter`
* ``{p}:dlq:index``   sorted set: letter id scored by its last failure time (newest = highest)
* ``{p}:dlq:evicted`` counter: letters pushed out by the size cap or the age limit
* ``{p}:dlq:causes``  hash: letter id -> ``{reason}\x1f{code}\x1f{last failure}`` (code empty when
  KlickTipp gave none), written and removed with the letter:
  what counting the letters by cause reads instead of every letter's message (the console's overview,
  ``ktsync status`` and ``metrics``, the dead-letter groups). Letters stored before it existed (0.4 and
  older) are indexed the first time a count finds the index short.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import cast

import redis

from ktsync.worker.deadletter.base import Bounds, Census, DeadLetter, Filter, census_of, merge

SCAN_PAGE = 500
UNREADABLE = "unreadable"  # the cause of a stored letter that is not a letter's JSON
SEP = "\x1f"


def _cause(reason: str, code: int | None, at: float) -> str:
    return f"{reason}{SEP}{'' if code is None else code}{SEP}{at!r}"


def _read_cause(letter_id: bytes, raw: bytes) -> tuple[str, str, int | None, float]:
    """(id, reason, code, last failure) of one index entry."""
    reason, code, at = raw.decode().split(SEP)
    return letter_id.decode(), reason, int(code) if code else None, float(at)


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
        self._causes = f"{prefix}:dlq:causes"
        self._bounds = bounds
        self._clock = clock

    def add(self, letter: DeadLetter) -> None:
        stored = merge(self.get(letter.id), letter)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._entries, letter.id, json.dumps(stored.to_dict(), sort_keys=True))
        pipe.zadd(self._index, {letter.id: stored.last_failed_at})
        pipe.hset(self._causes, letter.id, _cause(stored.reason, stored.code, stored.last_failed_at))
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
            pipe.hdel(self._causes, *too_old)
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

    def census(self) -> Census:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hlen(self._causes)
        pipe.zcard(self._index)
        indexed, stored = pipe.execute()
        if int(indexed) != int(stored):
            self._index_causes()
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._causes))
        return census_of(_read_cause(letter_id, cause) for letter_id, cause in raw.items())

    def _index_causes(self) -> None:
        """Index every stored letter's cause (letters from before the index, or from older workers)."""
        causes: dict[bytes, str] = {}
        for letter_id, raw in self._redis.hscan_iter(self._entries, count=SCAN_PAGE):
            try:
                letter = json.loads(raw)
                code = (letter.get("error") or {}).get("error")
                cause = _cause(str(letter["reason"]), code if isinstance(code, int) else None,
                               float(letter["last_failed_at"]))  # fmt: skip
            except (ValueError, TypeError, KeyError, AttributeError):
                cause = _cause(UNREADABLE, None, float(self._redis.zscore(self._index, letter_id) or 0.0))
            causes[letter_id] = cause
        stale = set(cast(list[bytes], self._redis.hkeys(self._causes))) - set(causes)
        pipe = self._redis.pipeline(transaction=False)
        items = list(causes.items())
        for start in range(0, len(items), SCAN_PAGE):
            pipe.hset(self._causes, mapping=dict(items[start : start + SCAN_PAGE]))
        if stale:
            pipe.hdel(self._causes, *stale)
        pipe.execute()

    def remove(self, letter_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._entries, letter_id)
        pipe.zrem(self._index, letter_id)
        pipe.hdel(self._causes, letter_id)
        removed, _, _ = pipe.execute()
        return bool(removed)

    def remove_many(self, letter_ids: Collection[str]) -> int:
        ids = sorted(set(letter_ids))
        if not ids:
            return 0
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._entries, *ids)
        pipe.zrem(self._index, *ids)
        pipe.hdel(self._causes, *ids)
        removed, _, _ = pipe.execute()
        return int(removed)

    def note_replay(self, letter_id: str) -> None:
        letter = self.get(letter_id)
        if letter is not None:
            updated = replace(letter, replays=letter.replays + 1)
            self._redis.hset(self._entries, letter_id, json.dumps(updated.to_dict(), sort_keys=True))

    def evicted(self) -> int:
        return int(cast(bytes | None, self._redis.get(self._evicted)) or 0)
