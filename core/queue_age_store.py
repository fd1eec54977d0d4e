"""Where the first-seen checkpoints of :mod:`ktsync.core.queue_age` live: Redis, and an in-memory twin for tests.

Key layout (``{p}`` the key prefix, ``{queue}`` a Celery queue name as configured):

* ``{p}:queue_age:{queue}``  sorted set, one per queue: member ``{step}:{delivery tag}`` (``step``
  the kombu priority list, 0 for the queue's own list), score the Redis server's time (seconds) when
  that message was first seen at the head of that list. At most ``MAX_CHECKPOINTS`` per list, deleted
  when the queue is empty, expiring after :data:`IDLE_TTL` without a sample. Only tags and times:
  no message content (no personal data) is ever copied.

The broker lists themselves are kombu's: ``{broker_prefix}{queue}`` plus one per priority step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import redis

from ktsync.core.broker import PRIORITY_STEPS, sub_queue
from ktsync.core.queue_age import (
    MAX_SCAN,
    TAIL_SAMPLE,
    Checkpoint,
    ListView,
    Nearest,
    Plan,
    QueueView,
    Scan,
    tag_of,
)

IDLE_TTL = 86_400  # seconds: a queue nobody samples for a day loses its checkpoints

# Look from the tail of one broker list for the message nearest it that carries one of the tags.
# KEYS[1]  the broker list
# ARGV[1]  how many messages to look at, at most; ARGV[2..] the delivery tags
# Returns the tag found, 0 when no message of the list carries one, 1 when none of the first
# ARGV[1] does but the list is longer (no verdict). Read in chunks: one LRANGE per 256 messages.
NEAREST_LUA = """
local wanted = {}
for i = 2, #ARGV do wanted[ARGV[i]] = true end
local length = redis.call('LLEN', KEYS[1])
local limit = math.min(length, tonumber(ARGV[1]))
local seen = 0
while seen < limit do
  local size = math.min(256, limit - seen)
  local items = redis.call('LRANGE', KEYS[1], -(seen + size), -(seen + 1))
  for i = #items, 1, -1 do
    local tag = string.match(items[i], '"delivery_tag"%s*:%s*"([^"]+)"')
    if tag and wanted[tag] then return tag end
  end
  seen = seen + size
end
if length > limit then return 1 end
return 0
"""


def age_key(key_prefix: str, queue: str) -> str:
    return f"{key_prefix}:queue_age:{queue}"


def _member(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.step}:{checkpoint.tag}"


def _checkpoint(member: bytes | str, score: float) -> Checkpoint | None:
    text = member.decode() if isinstance(member, bytes) else member
    step, sep, tag = text.partition(":")
    if not sep or not step.isdigit() or not tag:
        return None
    return Checkpoint(int(step), tag, float(score))


def _list_view(replies: Sequence[object]) -> ListView:
    length, head, tail = replies
    return ListView(int(cast(int, length)), cast(bytes | None, head), tuple(cast(list[bytes], tail)))


class RedisAgeBook:
    """Checkpoints in Redis; ``key_prefix=None`` reads the broker lists only (headers, no checkpoints)."""

    def __init__(self, client: redis.Redis, key_prefix: str | None, broker_prefix: str = "") -> None:
        self._redis, self._prefix, self._broker = client, key_prefix, broker_prefix
        self._nearest = client.register_script(NEAREST_LUA)

    def view(self, queues: Sequence[str]) -> dict[str, QueueView]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        for queue in queues:
            for step in PRIORITY_STEPS:
                name = self._broker + sub_queue(queue, step)
                pipe.llen(name)
                pipe.lindex(name, 0)
                pipe.lrange(name, -TAIL_SAMPLE, -1)
            if self._prefix is not None:
                pipe.zrange(age_key(self._prefix, queue), 0, -1, withscores=True)
        (seconds, micros), *replies = pipe.execute()
        now = seconds + micros / 1e6
        views, per_queue = {}, 3 * len(PRIORITY_STEPS) + (self._prefix is not None)
        for index, queue in enumerate(queues):
            chunk = replies[index * per_queue : (index + 1) * per_queue]
            lists = {step: _list_view(chunk[3 * i : 3 * i + 3]) for i, step in enumerate(PRIORITY_STEPS)}
            raw_marks = cast(list[tuple[bytes, float]], chunk[-1]) if self._prefix is not None else []
            marks = tuple(c for c in (_checkpoint(m, s) for m, s in raw_marks) if c is not None)
            views[queue] = QueueView(now, lists, marks)
        return views

    def nearest(self, queue: str, step: int, tags: Sequence[str]) -> Nearest:
        found = self._nearest(keys=[self._broker + sub_queue(queue, step)], args=[MAX_SCAN, *tags])
        if isinstance(found, bytes):
            return found.decode()
        return Scan.TOO_DEEP if found == 1 else Scan.NONE

    def update(self, plans: Mapping[str, Plan]) -> None:
        if self._prefix is None:
            return
        pipe = self._redis.pipeline(transaction=False)
        for queue, plan in plans.items():
            key = age_key(self._prefix, queue)
            if plan.empty:
                pipe.delete(key)
                continue
            if plan.remove:
                pipe.zrem(key, *(_member(c) for c in plan.remove))
            if plan.add:
                pipe.zadd(key, {_member(c): c.seen for c in plan.add}, nx=True)
            pipe.expire(key, IDLE_TTL)
        pipe.execute()


class MemoryAgeBook:
    """The in-memory twin: broker lists as Python lists (index 0 the head) and a clock of our own."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lists: dict[str, list[bytes]] = {}
        self.checkpoints: dict[str, dict[str, float]] = {}

    def push(self, name: str, raw: bytes) -> None:
        """LPUSH, as kombu publishes."""
        self.lists.setdefault(name, []).insert(0, raw)

    def pop(self, name: str) -> bytes | None:
        """RPOP, as a worker's BRPOP takes the oldest."""
        items = self.lists.get(name)
        return items.pop() if items else None

    def view(self, queues: Sequence[str]) -> dict[str, QueueView]:
        now, views = self.clock(), {}
        for queue in queues:
            lists = {}
            for step in PRIORITY_STEPS:
                items = self.lists.get(sub_queue(queue, step), [])
                lists[step] = ListView(len(items), items[0] if items else None, tuple(items[-TAIL_SAMPLE:]))
            marks = (_checkpoint(m, s) for m, s in self.checkpoints.get(queue, {}).items())
            views[queue] = QueueView(now, lists, tuple(c for c in marks if c is not None))
        return views

    def nearest(self, queue: str, step: int, tags: Sequence[str]) -> Nearest:
        items = self.lists.get(sub_queue(queue, step), [])
        wanted = set(tags)
        for raw in reversed(items[-MAX_SCAN:]):
            tag = tag_of(raw)
            if tag in wanted:
                return tag
        return Scan.TOO_DEEP if len(items) > MAX_SCAN else Scan.NONE

    def update(self, plans: Mapping[str, Plan]) -> None:
        for queue, plan in plans.items():
            if plan.empty:
                self.checkpoints.pop(queue, None)
                continue
            marks = self.checkpoints.setdefault(queue, {})
            for checkpoint in plan.remove:
                marks.pop(_member(checkpoint), None)
            for checkpoint in plan.add:
                marks.setdefault(_member(checkpoint), checkpoint.seen)
