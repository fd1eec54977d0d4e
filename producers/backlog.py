"""Flow control for bulk producers: the bulk backlog stays below ``bulk.max_backlog``.

The backlog is what waits in the bulk lane: messages in its broker queue plus tasks deferred in the
bulk key queues (see :mod:`ktsync.core.broker`). An import of a million rows then never puts a million
messages into Redis: it waits while the backlog is full and goes on as the workers drain it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from ktsync.config.settings import Settings
from ktsync.core.broker import deferred_by_lane, sub_queues
from ktsync.core.lanes import Lane

POLL = 0.5  # seconds between looks at a full backlog


def bulk_backlog(client: redis.Redis, settings: Settings) -> int:
    """Bulk messages waiting: queued in the broker, or deferred for the budget."""
    pipe = client.pipeline(transaction=False)
    for name in sub_queues(settings.worker.lane_queue(Lane.BULK)):
        pipe.llen(settings.broker_prefix + name)
    queued = sum(int(n) for n in pipe.execute())
    return queued + deferred_by_lane(client, settings.key_prefix)[Lane.BULK]


class Backpressure:
    """Waits until ``needed`` more bulk messages fit below ``bulk.max_backlog``."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = POLL,
    ) -> None:
        self._client, self._settings = client, settings
        self._sleep, self._poll = sleep, poll
        self.limit = settings.bulk.max_backlog
        self.last_backlog = 0

    def wait_for_room(self, needed: int, on_wait: Callable[[int], None] | None = None) -> int:
        """Block while the backlog is too full for ``needed`` more; returns the backlog seen last.

        An empty backlog always takes the batch, however big (so a batch above the limit still goes)."""
        while True:
            self.last_backlog = bulk_backlog(self._client, self._settings)
            if self.last_backlog == 0 or self.last_backlog + needed <= self.limit:
                return self.last_backlog
            if on_wait is not None:
                on_wait(self.last_backlog)
            self._sleep(self._poll)
