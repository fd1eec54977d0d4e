"""Build the worker's Celery app from the settings: broker, serialization, routing and the tasks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from celery import Celery, signals

from config.celery import celery_config
from config.settings import Settings, SourceSettings
from worker.retry import RetryPolicy
from worker.runtime import RuntimeHolder
from worker.tasks import NOTIFY_TASK, register_tasks


def create_app(
    settings: Settings, env: Mapping[str, str] | None = None, *, policy: RetryPolicy | None = None
) -> Celery:
    """A Celery app with ktsync's tasks; KlickTipp credentials come from ``env`` (default: os.environ)."""
    app = Celery("ktsync", set_as_current=False)
    app.conf.update(celery_config(settings))

    def notify(source: SourceSettings, payload: Mapping[str, Any]) -> None:
        app.send_task(NOTIFY_TASK, args=[source.callback_url, dict(payload)], queue=settings.worker.queue)

    holder = RuntimeHolder(settings, os.environ if env is None else env, notify)
    register_tasks(app, holder, policy or RetryPolicy())
    app.ktsync_runtime = holder

    def _close(**_: Any) -> None:
        holder.close()  # logs out of KlickTipp and closes pooled connections

    signals.worker_process_shutdown.connect(_close, weak=False)
    signals.worker_shutdown.connect(_close, weak=False)
    return app
