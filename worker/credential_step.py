"""While this worker's credential is refused, take no tasks; re-check it with backoff; take tasks again.

A consumer bootstep runs :class:`CredentialWatch` in the worker's main process (where the consumer
lives, whatever the pool): it stops consuming every queue as soon as the credential is marked
refused (by this worker or another holding the same credential, see :mod:`ktsync.worker.credentials`),
re-checks it after 5, 10, 20 ... 300 seconds with one real call, and resumes — in the lanes' order —
once KlickTipp accepts it again. Its tasks meanwhile wait in their queues for healthy workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery import bootsteps

from ktsync.config.settings import Settings
from ktsync.worker.credentials import CredentialHealth, backoff
from ktsync.worker.klicktipp.errors import AuthError, KlickTippError
from ktsync.worker.runtime import Tenants
from ktsync.worker.ticker import Ticker, thread_step

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between looks at the refusal flag
RENEW_EVERY = 10.0  # seconds between renewals of a refusal this worker still sees


class CredentialWatch:
    """The state machine; ``pause``/``resume`` stop and restart consuming, ``check`` is one real call."""

    def __init__(
        self,
        health: CredentialHealth,
        check: Callable[[], None],
        pause: Callable[[], None],
        resume: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        *,
        consuming: bool = True,
    ) -> None:
        self._health, self._check, self._pause, self._resume = health, check, pause, resume
        self._clock, self._wall = clock, wall
        self.consuming = consuming
        self._checks = 0
        self._next_check = 0.0
        self._renewed = 0.0

    def tick(self) -> None:
        if not self._health.refused():
            if not self.consuming:
                self._resume()
                self.consuming = True
                log.warning("KlickTipp accepts this worker's credentials again: taking tasks again")
            return
        now = self._clock()
        if self.consuming:
            self._pause()
            self.consuming, self._checks = False, 0
            log.error("ALARM: KlickTipp refuses this worker's credentials: it takes no tasks (they wait for "
                      "healthy workers) and re-checks them with backoff. Fix KLICKTIPP_* for this worker.")  # fmt: skip
            self._schedule(now)
        elif now >= self._next_check:
            self._recheck(now)
        elif now - self._renewed >= RENEW_EVERY:
            self._renew(now)

    def _recheck(self, now: float) -> None:
        try:
            self._check()
        except AuthError:
            log.warning("KlickTipp still refuses this worker's credentials (check %d)", self._checks + 1)
        except KlickTippError as exc:  # KlickTipp unreachable: no verdict, try again later
            log.warning("could not check this worker's credentials (%s)", exc.reason)
        else:
            self._health.accept()
            return
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        self._checks += 1
        self._next_check = now + backoff(self._checks)
        self._renew(now)

    def _renew(self, now: float) -> None:
        self._health.renew(self._wall() + (self._next_check - now))
        self._renewed = now


def consumer_switch(consumer: Any, queues: Sequence[str]) -> tuple[Callable[[], None], Callable[[], None]]:
    """``pause`` and ``resume`` for a Celery consumer, run on its own event loop (they are not
    thread-safe), or through remote control where there is no loop (gevent, eventlet)."""

    def on_loop(action: Callable[[str], Any]) -> Callable[[], None]:
        def run() -> None:
            for queue in queues:
                action(queue)

        hub = getattr(consumer, "hub", None)
        return (lambda: hub.call_soon(run)) if hub is not None else run

    return on_loop(consumer.cancel_task_queue), on_loop(consumer.add_task_queue)


def credential_step(holder: Tenants, settings: Settings) -> type[bootsteps.StartStopStep]:
    def watch(consumer: Any) -> Ticker:
        runtime = holder.get()
        queues = settings.worker.consumed_queues
        pause, resume = consumer_switch(consumer, queues)
        # After a reconnect the consumer reads only the queues still selected: a paused worker
        # restarts paused, and resumes when the credential works again.
        selected = consumer.app.amqp.queues.consume_from or {}
        consuming = all(queue in selected for queue in queues)
        credential = runtime.klicktipp.credential
        tick = CredentialWatch(credential.health, credential.check, pause, resume, consuming=consuming).tick
        return Ticker("ktsync-credential-watch", tick, WATCH_INTERVAL)

    return thread_step("CredentialStep", watch)
