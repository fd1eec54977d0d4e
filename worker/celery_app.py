"""Build the worker's Celery app from the settings: broker, serialization, routing and the tasks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from celery import Celery, bootsteps, signals

from ktsync.config.celery import celery_config
from ktsync.config.settings import Settings, SourceSettings
from ktsync.core.lanes import Lane
from ktsync.worker.credential_step import credential_step
from ktsync.worker.head import HeadRelease
from ktsync.worker.keyqueues import release_step
from ktsync.worker.malformed import dead_lettering_consumer
from ktsync.worker.queue_age_step import queue_age_step
from ktsync.worker.recovery.step import recovery_step
from ktsync.worker.retry import RetryPolicy
from ktsync.worker.runtime import Tenants
from ktsync.worker.schedule import ScheduleMover, parked_step
from ktsync.worker.tasks import NOTIFY_TASK, AppSender, register_tasks
from ktsync.worker.ticker import thread_step


def retry_policy(settings: Settings) -> RetryPolicy:
    retry = settings.retry
    return RetryPolicy(
        max_attempts=retry.max_attempts,
        min_backoff=retry.min_backoff,
        max_backoff=retry.max_backoff,
        max_pause=settings.rate.max_pause,
    )


def _schedule_mover_step(app: Celery, holder: Tenants, settings: Settings) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep: every worker runs a mover for parked retries and deferred key queues."""

    sender = AppSender(app, settings)

    def mover(_consumer: Any) -> ScheduleMover:
        shared = holder.shared()
        head = HeadRelease(shared.redis, settings.broker_prefix, sender.publish, sender.queue_of)
        steps = [
            parked_step(shared.schedule, sender.publish),
            head.after(release_step(shared.key_queues, head.publish)),
        ]
        return ScheduleMover(shared.locks, steps)

    return thread_step("ScheduleMoverStep", mover)


def create_app(
    settings: Settings, env: Mapping[str, str] | None = None, *, policy: RetryPolicy | None = None
) -> Celery:
    """A Celery app with ktsync's tasks; KlickTipp credentials come from ``env`` (default: os.environ)."""
    app = Celery("ktsync", set_as_current=False)
    app.conf.update(celery_config(settings))

    def notify(source: SourceSettings, payload: Mapping[str, Any]) -> None:
        app.send_task(NOTIFY_TASK, args=[source.callback_url, dict(payload)],
                      queue=settings.worker.lane_queue(Lane.LIVE))  # fmt: skip

    holder = Tenants(settings, os.environ if env is None else env, notify)
    register_tasks(app, holder, policy or retry_policy(settings))
    app.ktsync_runtime = holder
    # A message no task can run (not JSON, an unknown task name, not a task call) becomes a dead letter.
    app.conf.worker_consumer = dead_lettering_consumer(holder)
    app.steps["consumer"].add(_schedule_mover_step(app, holder, settings))
    app.steps["consumer"].add(recovery_step(holder, settings))
    app.steps["consumer"].add(credential_step(holder, settings))
    app.steps["consumer"].add(queue_age_step(holder, settings))  # first-seen ages (ktsync.core.queue_age)

    def _close(**_: Any) -> None:
        holder.close()  # logs out of KlickTipp and closes pooled connections

    signals.worker_process_shutdown.connect(_close, weak=False)
    signals.worker_shutdown.connect(_close, weak=False)
    return app


_module_app: Celery | None = None


def __getattr__(name: str) -> Any:
    """``app`` (and ``celery``): built from the settings on first use, so that Celery's own CLI can load it.

    ``celery -A ktsync.worker.celery_app inspect ping|active|stats|registered``, ``events`` and
    ``purge -Q ktsync.live`` then work as for any Celery project. Built lazily: importing this module
    (``create_app``) reads no configuration. Run workers with ``ktsync worker``: it checks the account
    before consuming, which ``celery worker`` would skip.
    """
    global _module_app
    if name not in ("app", "celery"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _module_app is None:
        from ktsync.config.settings import load_settings

        _module_app = create_app(load_settings())
    return _module_app
