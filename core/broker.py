"""Where things live in Redis that more than one package reads: kombu's broker lists and ktsync's key queues.

Kombu's Redis transport keeps waiting messages in a list per queue (plus one list per priority step;
``LPUSH`` to publish, ``BRPOP`` to consume, so the oldest message is at index -1) and delivered but
unacknowledged ones in the ``unacked`` hash. Every broker key carries ``broker_prefix`` (kombu's
``global_keyprefix``). Work deferred for its budget waits in ktsync's key queues (written by
:mod:`ktsync.worker.keyqueues`; producers read their depth for flow control).
"""

from __future__ import annotations

from typing import cast

import redis

from ktsync.core.lanes import LANES, Lane

ENQUEUED_AT_HEADER = "ktsync_enqueued_at"  # first enqueue time (Unix seconds), for latency and queue ages
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's defaults
UNACKED_KEY = "unacked"


def sub_queue(queue: str, step: int) -> str:
    """The list kombu keeps for one priority step of a queue (step 0: the queue's own name)."""
    return queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}"


def sub_queues(queue: str) -> list[str]:
    """The lists kombu keeps for one queue: the queue itself plus one per priority step."""
    return [sub_queue(queue, step) for step in PRIORITY_STEPS]


def key_queue(prefix: str, fairness_key: str) -> str:
    """The sorted set of one fairness key's deferred tasks."""
    return f"{prefix}:kq:{fairness_key}"


def key_queue_registry(prefix: str) -> str:
    """The set of fairness keys that have deferred tasks."""
    return f"{prefix}:kq:keys"


def deferred_by_lane(client: redis.Redis, key_prefix: str) -> dict[Lane, int]:
    """Tasks waiting for their budget in the key queues, per lane (fairness keys end in ``:{lane}``)."""
    keys = sorted(k.decode() for k in cast(set[bytes], client.smembers(key_queue_registry(key_prefix))))
    counts = dict.fromkeys(LANES, 0)
    if not keys:
        return counts
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.zcard(key_queue(key_prefix, key))
    for key, count in zip(keys, pipe.execute(), strict=True):
        lane = key.rsplit(":", 1)[-1]
        if lane in counts:
            counts[Lane(lane)] += int(count)
    return counts
