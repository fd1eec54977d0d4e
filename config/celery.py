"""Celery settings derived from ktsync's settings: one place, shared by workers and producers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kombu.connection import Connection
from kombu.entity import Queue

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane

# Tasks that make no KlickTipp call of their own but enqueue many that do.
BULK_TASKS = ("ktsync.reconcile",)
# Kombu's Redis transport with ktsync's repairs for a Redis that goes away (ktsync.worker.transport),
# chosen by the broker URL's scheme (any other scheme: kombu's own choice). Connections still call it
# redis:// or rediss:// (the workers' log, Flower's broker view, which connects by that scheme).
BROKER_TRANSPORTS = {
    "redis": "ktsync.worker.transport:Transport",
    "rediss": "ktsync.worker.transport:TlsTransport",
}
for _scheme, _path in BROKER_TRANSPORTS.items():
    Connection.resolve_aliases.setdefault(_path, _scheme)


def broker_transport(url: str) -> str | None:
    """The transport Celery is given for a broker URL (None: kombu's, by the URL's scheme)."""
    return BROKER_TRANSPORTS.get(urlsplit(url).scheme)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration both sides must agree on (broker, serialization, routing)."""
    worker = settings.worker
    live, bulk = worker.lane_queue(Lane.LIVE), worker.lane_queue(Lane.BULK)
    transport: dict[str, Any] = {
        # BRPOP on the queues in the order the worker consumes them (live, the pre-lane queue, bulk):
        # a waiting live message is always taken first. kombu's default rotates the order instead.
        "queue_order_strategy": "priority",
        "visibility_timeout": worker.visibility_timeout,
        # A dead worker's tasks come back within seconds through ktsync's heartbeats (worker/recovery);
        # the visibility timeout is kombu's last resort, swept every restore_interval seconds.
        "unacked_restore_interval": worker.restore_interval,
        "unacked_restore_throttle": 1,
        # The lock around that sweep: a worker killed while holding it would delay recovery by kombu's
        # default 300 s.
        "unacked_mutex_expire": 30,
    }
    if settings.broker_prefix:
        # Every broker key (queues, unacked, bindings) under one prefix: lets a shared Redis host
        # several ktsync installations, or a test run, without touching anyone else's keys.
        transport["global_keyprefix"] = settings.broker_prefix
    return {
        "broker_url": settings.redis_url,
        "broker_transport": broker_transport(settings.redis_url),
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a restarting Redis is waited for, never given up on
        # Tasks must be redelivered only when a worker really died, never while they wait: every retry
        # countdown is kept below this (longer delays are parked in ktsync's own schedule).
        "broker_transport_options": transport,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Nothing reads task results: a result backend would cost a third of the throughput.
        "task_ignore_result": True,
        "result_backend": None,
        # Live by default; a producer picks the bulk lane by sending to its queue.
        "task_default_queue": live,
        "task_queues": [Queue(name, routing_key=name) for name in worker.consumed_queues],  # type: ignore[no-untyped-call]
        "task_routes": {**{name: {"queue": bulk} for name in BULK_TASKS}, "ktsync.*": {"queue": live}},
        # At-least-once: acknowledge after the task ran, requeue when the worker process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Flower needs the workers' task events. "task-sent" events from producers are off: each
        # would be a second Redis write per enqueued message (measured: 2,168 vs 1,536 enqueues/s);
        # Flower shows a task from the moment a worker receives it.
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }
