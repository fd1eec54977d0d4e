"""Wiring into Celery: a consumer bootstep that runs the heartbeat and the reclaimer in every worker."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery, bootsteps

from ktsync.config.settings import Settings
from ktsync.worker.locks import RedisLocks
from ktsync.worker.recovery.heartbeat import Heartbeat, consumer_held
from ktsync.worker.recovery.keys import Keys
from ktsync.worker.recovery.reclaimer import Reclaimer, Restore
from ktsync.worker.runtime import Tenants, WorkerRuntime
from ktsync.worker.state import RedisStateStore
from ktsync.worker.ticker import Ticker


def kombu_restore(app: Celery) -> Restore:
    """Put delivery tags back at the head of their queue through kombu's own ``restore_by_tag``
    (``leftmost=False``: the end BRPOP takes next), on a connection of the worker's app."""

    def restore(tags: Sequence[str]) -> None:
        with app.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag, leftmost=False)

    return restore


class Recovery:
    """The heartbeat and the reclaimer of one worker, each a thread of its own: a slow reclaim pass
    must never delay a beat."""

    def __init__(self, runtime: WorkerRuntime, consumer: Any, settings: Settings) -> None:
        worker, session, keys = settings.worker, runtime.shared.session, Keys.of(settings)
        entry = {"host": session.host, "pid": os.getpid(), "nodename": str(getattr(consumer, "hostname", "")),
                 "account": runtime.klicktipp.account, "started": time.time()}  # fmt: skip
        # With the threads (or solo) pool the tasks share this process's stores: the heartbeat retries
        # their releases that failed in a Redis outage even when no task comes to piggyback them.
        owed = [
            s.release_pending
            for s in (runtime.stores.state, runtime.shared.locks)
            if isinstance(s, RedisStateStore | RedisLocks)
        ]
        self.heartbeat = Heartbeat(runtime.shared.redis, keys, session, entry=entry, held=consumer_held(consumer),
                                   timeout=worker.heartbeat_timeout, owed=owed)  # fmt: skip
        self.reclaimer = Reclaimer(runtime.shared.redis, keys, session=session.id, account=runtime.klicktipp.account,
                                   queues=worker.consumed_queues, timeout=worker.heartbeat_timeout,
                                   restore=kombu_restore(consumer.app), pulse=self.heartbeat.pulse)  # fmt: skip
        self._threads = [
            Ticker("ktsync-heartbeat", self.heartbeat.beat_once, worker.heartbeat_interval),
            Ticker("ktsync-reclaimer", self.reclaimer.run_once, worker.heartbeat_interval),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop()
        self.heartbeat.deregister()


def recovery_step(holder: Tenants, settings: Settings) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep: heartbeat and reclaimer from the consumer's start to the worker's end."""

    class RecoveryStep(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = frozenset({"celery.worker.consumer.tasks:Tasks"})

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.recovery: Recovery | None = None

        def start(self, parent: Any) -> None:
            # Also called after every broker reconnect: the threads already run (they read the new
            # channel at each beat).
            if self.recovery is None:
                self.recovery = Recovery(holder.get(), parent, settings)
                self.recovery.start()

        def stop(self, parent: Any) -> None:
            """Nothing: a reconnect stops every consumer step, and a worker that stops beating while it
            reconnects, or while a warm shutdown lets its tasks finish, would be reclaimed."""

        def shutdown(self, parent: Any) -> None:
            # The worker's very end (the pool has stopped): deregister.
            if self.recovery is not None:
                self.recovery.stop()
                self.recovery = None

    return RecoveryStep
