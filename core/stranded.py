"""Messages waiting on broker lists no worker of this installation reads: a broker-prefix mismatch, named.

``redis.broker_prefix`` (kombu's ``global_keyprefix``) is part of the wire: kombu puts it in front of
every key, so workers with prefix ``P`` read the list ``P`` + ``ktsync.live``, and a producer that
sends to ``ktsync.live`` without it fills a list nobody reads. Workers do not read both on purpose:
the prefix exists so that several installations can share one Redis, and reading the unprefixed
names too would take another installation's messages.

Two checks. Cheap (``ktsync status``, each metrics scrape, each worker): with a prefix set, the
unprefixed names of the consumed queues (and their priority lists). Thorough (``ktsync status``
only): a bounded ``SCAN`` for lists named like a consumed queue under any other prefix, or under one
when none is set, kept only when their oldest message is a ktsync task.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from ktsync.core.broker import PRIORITY_STEPS, sub_queues

SCAN_PAGE = 1000
SCAN_PAGES = 100  # SCAN calls at most (about 100,000 keys): status stays fast on a big Redis
TASK_PREFIX = "ktsync."


@dataclass(frozen=True)
class Stranded:
    key: str  # the Redis list (the queue's own, priority lists counted with it), e.g. "ktsync.live"
    queue: str  # the consumed queue it was meant for
    prefix: str  # the broker prefix the producer used ("" for none)
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stranded_unprefixed(client: redis.Redis, queues: Sequence[str], broker_prefix: str) -> list[Stranded]:
    """Messages on the unprefixed names of the consumed queues (and their priority lists), one entry per
    queue (0 included); none without a prefix."""
    if not broker_prefix or not queues:
        return []
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for name in sub_queues(queue):
            pipe.llen(name)
    counts = iter(cast(list[int], pipe.execute()))
    return [Stranded(queue, queue, "", sum(int(next(counts)) for _ in PRIORITY_STEPS)) for queue in queues]


def split_key(key: str, queues: Sequence[str], broker_prefix: str) -> tuple[str, str] | None:
    """``(prefix, queue)`` when ``key`` is a consumed queue's list (or priority list) under a prefix
    other than ours; None for our own lists and for any other name."""
    for queue in sorted(queues, key=len, reverse=True):  # "x.live" before "x": the longest name wins
        for name in sub_queues(queue):
            if key.endswith(name):
                prefix = key[: len(key) - len(name)]
                return None if prefix == broker_prefix else (prefix, queue)
    return None


def is_ktsync_task(raw: bytes | None) -> bool:
    try:
        task = json.loads(raw or b"").get("headers", {}).get("task")
    except (ValueError, TypeError, AttributeError):
        return False
    return isinstance(task, str) and task.startswith(TASK_PREFIX)


def scan_stranded(
    client: redis.Redis, queues: Sequence[str], broker_prefix: str
) -> tuple[list[Stranded], bool]:
    """Lists of ktsync tasks under other prefixes, found by a bounded SCAN; and whether it saw every key."""
    found: dict[str, tuple[str, str]] = {}
    cursor, pages = 0, 0
    while pages < SCAN_PAGES:
        try:
            cursor, keys = client.scan(cursor, count=SCAN_PAGE, _type="list")
        except redis.ResponseError:  # SCAN ... TYPE needs Redis 6: no thorough check before it
            return [], False
        pages += 1
        for raw_key in cast(list[bytes], keys):
            key = raw_key.decode(errors="replace")
            where = split_key(key, queues, broker_prefix)
            if where is not None:
                found[key] = where
        if cursor == 0:
            break
    return _count(client, found), cursor == 0


def _count(client: redis.Redis, found: dict[str, tuple[str, str]]) -> list[Stranded]:
    if not found:
        return []
    keys = sorted(found)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
        pipe.lindex(key, -1)
    replies = pipe.execute()
    totals: Counter[tuple[str, str]] = Counter()
    for index, key in enumerate(keys):
        length, oldest = int(replies[2 * index]), cast(bytes | None, replies[2 * index + 1])
        if length and is_ktsync_task(oldest):
            totals[found[key]] += length
    return [
        Stranded(prefix + queue, queue, prefix, count) for (prefix, queue), count in sorted(totals.items())
    ]


def find_stranded(
    client: redis.Redis, queues: Sequence[str], broker_prefix: str, *, scan: bool
) -> tuple[list[Stranded], bool]:
    """Every stranded list with messages (the cheap check, plus the SCAN with ``scan``), and whether
    the SCAN saw every key (True without it)."""
    cheap = [s for s in stranded_unprefixed(client, queues, broker_prefix) if s.count]
    if not scan:
        return cheap, True
    scanned, complete = scan_stranded(client, queues, broker_prefix)
    known = {s.key for s in cheap}
    found = [*cheap, *(s for s in scanned if s.key not in known)]
    return sorted(found, key=lambda s: (s.prefix, s.queue)), complete


def describe(stranded: Stranded, broker_prefix: str) -> str:
    """One warning line: the list, how many messages, why no worker reads them, and the fix."""
    ours, queue = f"{broker_prefix}{stranded.queue}", stranded.queue
    count = f"{stranded.count} {'message waits' if stranded.count == 1 else 'messages wait'}"
    waiting = f'{count} on "{stranded.key}"'
    if not stranded.prefix:
        return (f'{waiting}, which no worker reads: redis.broker_prefix is "{broker_prefix}", so workers read '
                f'"{ours}". Fix the producer: Celery broker_transport_options={{"global_keyprefix": '
                f'"{broker_prefix}"}}; other clients LPUSH to "{ours}" with routing_key "{queue}"')  # fmt: skip
    if broker_prefix and stranded.prefix == broker_prefix * 2:
        return (f'{waiting}: redelivered messages whose routing_key carried the broker prefix ("{ours}", not '
                f'"{queue}"), which kombu prefixed twice; no worker reads them. Fix the producer\'s routing_key '
                f'to "{queue}"')  # fmt: skip
    setting = (
        f'redis.broker_prefix is "{broker_prefix}"' if broker_prefix else "redis.broker_prefix is not set"
    )
    return (f'{waiting} (queue {queue} under the broker prefix "{stranded.prefix}"), which no worker of this '
            f'installation reads ({setting}, so workers read "{ours}"). Unless another installation uses that '
            f'prefix, fix the producer to send to "{ours}"')  # fmt: skip
