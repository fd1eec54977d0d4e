"""Flow control for bulk producers: each tenant's bulk backlog stays below ``bulk.max_backlog``.

A tenant's backlog is what waits in the bulk lane for it: the messages in the bulk lane's broker
queue plus its tasks deferred in the bulk key queues (see :mod:`ktsync.core.broker`). An import of a
million rows then never puts a million messages into Redis: it waits while its backlog is full and
goes on as the workers drain it.

Per tenant, and what that costs:

* Deferred work is counted per tenant exactly. A key queue belongs to one fairness key (KlickTipp
  account + lane) and so to one tenant (or to the tenants sharing one KlickTipp login, who share its
  budget anyway). Which tenant a key queue holds is read from its oldest and newest entry: three
  small commands per bulk key queue, pipelined, however long the queues are.
* The broker queue is one list every tenant's bulk messages share, opaque kombu envelopes: counting
  one tenant's would mean reading and decoding the whole list on every look. It is counted whole, for
  every tenant. That part is bounded and short-lived: workers take bulk messages at their own speed
  (a task whose budget is spent moves to its key queue at once), and each tenant's producer stops
  once its own backlog is full. So another tenant's import makes a producer wait at most while the
  workers drain one broker queue of at most ``bulk.max_backlog`` per busy tenant, never while another
  account's budget works through its deferred tasks (hours, for a large import).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from ktsync.config.settings import Settings
from ktsync.core.broker import key_queue, key_queue_registry, sub_queues
from ktsync.core.lanes import Lane
from ktsync.core.tenants import tenant_of

POLL = 0.5  # seconds between looks at a full backlog
BULK_SUFFIX = f":{Lane.BULK.value}"  # fairness keys end in their lane


def queued_bulk(client: redis.Redis, settings: Settings) -> int:
    """Bulk messages in the broker's bulk queue (every tenant's)."""
    pipe = client.pipeline(transaction=False)
    for name in sub_queues(settings.worker.lane_queue(Lane.BULK)):
        pipe.llen(settings.broker_prefix + name)
    return sum(int(n) for n in pipe.execute())


def entry_tenant(raw: bytes | str) -> str:
    """The tenant of one key-queue entry (a parked task: its first argument is the message)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return tenant_of(None)
    args = data.get("args") if isinstance(data, dict) else None
    return tenant_of(args[0] if isinstance(args, list) and args else None)


def deferred_bulk(client: redis.Redis, deployment_prefix: str, tenant: str) -> int:
    """The tenant's bulk tasks deferred in the key queues (see the module docstring)."""
    registry = cast(set[bytes], client.smembers(key_queue_registry(deployment_prefix)))
    keys = sorted(k.decode() for k in registry if k.decode().endswith(BULK_SUFFIX))
    if not keys:
        return 0
    pipe = client.pipeline(transaction=False)
    for key in keys:
        name = key_queue(deployment_prefix, key)
        pipe.zcard(name)
        pipe.zrange(name, 0, 0)
        pipe.zrange(name, -1, -1)
    replies: list[Any] = pipe.execute()
    total = 0
    for index in range(0, len(replies), 3):
        count, oldest, newest = replies[index : index + 3]
        if tenant in {entry_tenant(raw) for raw in [*oldest, *newest]}:
            total += int(count)
    return total


def bulk_backlog(client: redis.Redis, settings: Settings, tenant: str | None = None) -> int:
    """The bulk messages waiting for ``tenant`` (default: the settings' tenant): queued or deferred."""
    whose = settings.tenant if tenant is None else tenant
    return queued_bulk(client, settings) + deferred_bulk(client, settings.deployment_prefix, whose)


class Backpressure:
    """Waits until ``needed`` more of the tenant's bulk messages fit below ``bulk.max_backlog``."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        tenant: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = POLL,
    ) -> None:
        self._client, self._settings = client, settings
        self.tenant = settings.tenant if tenant is None else tenant
        self._sleep, self._poll = sleep, poll
        self.limit = settings.bulk.max_backlog
        self.last_backlog = 0

    def wait_for_room(self, needed: int, on_wait: Callable[[int], None] | None = None) -> int:
        """Block while the backlog is too full for ``needed`` more; returns the backlog seen last.

        An empty backlog always takes the batch, however big (so a batch above the limit still goes)."""
        while True:
            self.last_backlog = bulk_backlog(self._client, self._settings, self.tenant)
            if self.last_backlog == 0 or self.last_backlog + needed <= self.limit:
                return self.last_backlog
            if on_wait is not None:
                on_wait(self.last_backlog)
            self._sleep(self._poll)
