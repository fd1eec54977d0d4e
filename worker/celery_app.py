"""Build the worker's Celery app from the settings: broker, serialization, routing and the tasks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from celery import Celery, bootsteps, signals

from config.celery import celery_config
from config.settings import Settings, SourceSettings
from worker.retry import RetryPolicy
from worker.runtime import RuntimeHolder
from worker.schedule import Parked, ScheduleMover
from worker.tasks import NOTIFY_TASK, AppSender, register_tasks


def retry_policy(settings: Settings) -> RetryPolicy:
    retry = settings.retry
    return RetryPolicy(
        max_attempts=retry.max_attempts, min_backoff=retry.min_backoff, max_backoff=retry.max_backoff
    )


def _schedule_mover_step(
    app: Celery, holder: RuntimeHolder, settings: Settings
) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep: every worker runs a mover for delayed tasks parked in Redis."""

    sender = AppSender(app, settings.worker.queue)

    def publish(entry: Parked) -> None:
        sender.send(entry.task, list(entry.args), dict(entry.kwargs), entry.id)

    class ScheduleMoverStep(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = frozenset({"celery.worker.consumer.tasks:Tasks"})

        def start(self, parent: Any) -> None:
            runtime = holder.get()
            self.mover = ScheduleMover(runtime.schedule, runtime.locks, publish)
            self.mover.start()

        def stop(self, parent: Any) -> None:
            mover = getattr(self, "mover", None)
            if mover is not None:
                mover.stop()

    return ScheduleMoverStep


def create_app(
    settings: Settings, env: Mapping[str, str] | None = None, *, policy: RetryPolicy | None = None
) -> Celery:
    """A Celery app with ktsync's tasks; KlickTipp credentials come from ``env`` (default: os.environ)."""
    app = Celery("ktsync", set_as_current=False)
    app.conf.update(celery_config(settings))

    def notify(source: SourceSettings, payload: Mapping[str, Any]) -> None:
        app.send_task(NOTIFY_TASK, args=[source.callback_url, dict(payload)], queue=settings.worker.queue)

    holder = RuntimeHolder(settings, os.environ if env is None else env, notify)
    register_tasks(app, holder, policy or retry_policy(settings))
    app.ktsync_runtime = holder
    app.steps["consumer"].add(_schedule_mover_step(app, holder, settings))

    def _close(**_: Any) -> None:
        holder.close()  # logs out of KlickTipp and closes pooled connections

    signals.worker_process_shutdown.connect(_close, weak=False)
    signals.worker_shutdown.connect(_close, weak=False)
    return app
