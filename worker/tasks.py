"""Celery tasks: thin shells that parse the message, call the service and apply the retry decision."""

from __future__ import annotations

import logging
import random
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery, Task

from ktsync.contract import TASK_NAMES, ContactUpsert, Message, MessageType, parse_message
from worker.deadletter import DeadLetter
from worker.retry import Action, RetryPolicy, decide
from worker.runtime import RuntimeHolder, WorkerRuntime
from worker.service import SyncOutcome

log = logging.getLogger(__name__)

Handler = Callable[[WorkerRuntime, Message], SyncOutcome]


def register_tasks(app: Celery, holder: RuntimeHolder, policy: RetryPolicy) -> None:
    """Define ktsync's tasks on ``app``; they fetch their dependencies from ``holder``."""
    rng = random.Random()

    @app.task(name=TASK_NAMES[MessageType.UPSERT], bind=True, max_retries=None, shared=False)  # type: ignore[untyped-decorator]
    def sync_contact(self: Task, message: dict[str, Any]) -> dict[str, Any]:
        return execute(self, holder.get(), message, _upsert, policy=policy, rng=rng)


def _upsert(runtime: WorkerRuntime, event: Message) -> SyncOutcome:
    assert isinstance(event, ContactUpsert)
    return runtime.service.upsert(event)


def execute(
    task: Task,
    runtime: WorkerRuntime,
    message: Mapping[str, Any],
    handler: Handler,
    *,
    policy: RetryPolicy,
    rng: random.Random,
) -> dict[str, Any]:
    """Run one task attempt; retry or dead-letter failures as :func:`worker.retry.decide` says."""
    started = time.perf_counter()
    attempt = int(task.request.retries) + 1
    runtime.calls.reset()
    try:
        outcome = handler(runtime, parse_message(message))
    except Exception as exc:
        decision = decide(exc, attempt, policy, rng)
        _log_outcome(task, message, decision.action.value, attempt, runtime, started, reason=decision.reason)
        if decision.action is Action.RETRY:
            runtime.stats.incr("retried")
            raise task.retry(exc=exc, countdown=decision.delay) from exc
        _dead_letter(runtime, task, message, exc, reason=decision.reason, attempt=attempt)
        return {"status": "dead_lettered", "reason": decision.reason}
    runtime.stats.incr(outcome.status)
    _log_outcome(task, message, outcome.status, attempt, runtime, started)
    return {"status": outcome.status, "klicktipp_id": outcome.klicktipp_id}


def _dead_letter(
    runtime: WorkerRuntime,
    task: Task,
    message: Mapping[str, Any],
    exc: Exception,
    *,
    reason: str,
    attempt: int,
) -> None:
    now = time.time()
    runtime.dead_letters.add(
        DeadLetter(
            id=str(task.request.id),
            message=dict(message) if isinstance(message, Mapping) else {"raw": repr(message)},
            task=str(task.name),
            reason=reason,
            error=_error_details(exc, reason),
            attempts=attempt,
            first_failed_at=now,
            last_failed_at=now,
            host=socket.gethostname(),
            source=str(message.get("source", "")) if isinstance(message, Mapping) else "",
        )
    )
    runtime.stats.incr("dead_lettered")


def _error_details(exc: Exception, reason: str) -> dict[str, Any]:
    to_dict = getattr(exc, "to_dict", None)
    details: dict[str, Any] = dict(to_dict()) if callable(to_dict) else {}
    details.setdefault("type", type(exc).__name__)
    details.setdefault("message", str(exc))
    if reason == "unexpected":
        details["traceback"] = "".join(traceback.format_exception(exc))
    return details


def _log_outcome(
    task: Task,
    message: Mapping[str, Any],
    outcome: str,
    attempt: int,
    runtime: WorkerRuntime,
    started: float,
    reason: str = "",
) -> None:
    fields = message if isinstance(message, Mapping) else {}
    log.log(
        logging.WARNING if outcome == "dead_letter" else logging.INFO,
        "task=%s id=%s outcome=%s%s source=%s crm_contact_id=%s attempt=%d calls=%d duration_ms=%.1f",
        task.name,
        task.request.id,
        outcome,
        f" reason={reason}" if reason else "",
        fields.get("source", ""),
        fields.get("crm_contact_id", ""),
        attempt,
        runtime.calls.value(),
        (time.perf_counter() - started) * 1000,
    )
