"""Every worker samples its queues: first-seen checkpoints for other producers' messages, stranded-message warnings.

A consumer bootstep runs :class:`QueueWatch` on a :class:`~ktsync.worker.ticker.Ticker` every
``SAMPLE_INTERVAL`` seconds, so that the age ``ktsync status`` and ``ktsync metrics`` report for an
unstamped message is exact to that interval even when nobody ran them while it waited (see
:mod:`ktsync.core.queue_age`). It also logs, at most every :data:`WARN_EVERY` seconds, messages waiting
under the unprefixed queue names when ``redis.broker_prefix`` is set (see :mod:`ktsync.core.stranded`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import bootsteps

from ktsync.config.settings import Settings
from ktsync.core.queue_age import SAMPLE_INTERVAL, sample_queues
from ktsync.core.queue_age_store import RedisAgeBook
from ktsync.core.stranded import describe, stranded_unprefixed
from ktsync.worker.runtime import Tenants
from ktsync.worker.ticker import Ticker, thread_step

log = logging.getLogger(__name__)

WARN_EVERY = 300.0  # seconds between two warnings about the same stranded messages


class QueueWatch:
    """One sample of the worker's queues per :meth:`tick` (no scans: readers do those)."""

    def __init__(
        self, client: redis.Redis, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._redis, self._settings, self._clock = client, settings, clock
        self._book = RedisAgeBook(client, settings.key_prefix, settings.broker_prefix)
        self._queues = settings.worker.consumed_queues
        self._warned_at: float | None = None

    def tick(self) -> None:
        sample_queues(self._book, self._queues, local_now=time.time(), scan=False)
        prefix = self._settings.broker_prefix
        stranded = [s for s in stranded_unprefixed(self._redis, self._queues, prefix) if s.count]
        now = self._clock()
        if stranded and (self._warned_at is None or now - self._warned_at >= WARN_EVERY):
            self._warned_at = now
            for entry in stranded:
                log.warning("stranded messages: %s (ktsync status lists them)", describe(entry, prefix))


def queue_age_step(holder: Tenants, settings: Settings) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep: the queue watch from the consumer's start to its stop."""

    def watch(_consumer: Any) -> Ticker:
        return Ticker("ktsync-queue-age", QueueWatch(holder.shared().redis, settings).tick, SAMPLE_INTERVAL)

    return thread_step("QueueAgeStep", watch)
