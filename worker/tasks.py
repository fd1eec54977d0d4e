"""Celery tasks: thin shells that parse the message, call the service and apply the retry decision.

Every task takes the original message plus ``failures`` (how many attempts failed so far). Waiting
for another event of the same contact (a busy per-contact lock) requeues the task without counting
as a failure.
"""

from __future__ import annotations

import logging
import random
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import requests
from celery import Celery, Task

from ktsync.contract import (
    TASK_NAMES,
    ContactDeleted,
    ContactUpsert,
    DeletionRequested,
    Message,
    MessageType,
    parse_message,
)
from worker.deadletter import DeadLetter
from worker.locks import LockBusy
from worker.retry import Action, RetryPolicy, decide
from worker.runtime import RuntimeHolder, WorkerRuntime
from worker.service import SyncOutcome

log = logging.getLogger(__name__)

NOTIFY_TASK = "ktsync.notify_crm"
CALLBACK_TIMEOUT = 10.0
Handler = Callable[[WorkerRuntime, Message], SyncOutcome]


def _upsert(runtime: WorkerRuntime, event: Message) -> SyncOutcome:
    assert isinstance(event, ContactUpsert)
    return runtime.sync.upsert(event)


def _deleted(runtime: WorkerRuntime, event: Message) -> SyncOutcome:
    assert isinstance(event, ContactDeleted)
    return runtime.deletions.contact_deleted(event)


def _deletion_requested(runtime: WorkerRuntime, event: Message) -> SyncOutcome:
    assert isinstance(event, DeletionRequested)
    return runtime.deletions.deletion_requested(event)


HANDLERS: Mapping[MessageType, Handler] = {
    MessageType.UPSERT: _upsert,
    MessageType.DELETED: _deleted,
    MessageType.DELETION_REQUESTED: _deletion_requested,
}


class CallbackFailed(Exception):
    """The CRM's callback URL did not take the result; worth retrying."""

    reason = "callback"
    retryable = True
    retry_after: float | None = None


def register_tasks(app: Celery, holder: RuntimeHolder, policy: RetryPolicy) -> None:
    """Define ktsync's tasks on ``app``; they fetch their dependencies from ``holder``."""
    rng = random.Random()
    for kind, handler in HANDLERS.items():
        _register_message_task(app, TASK_NAMES[kind], handler, holder, policy, rng)

    @app.task(name=NOTIFY_TASK, bind=True, max_retries=None, shared=False)  # type: ignore[untyped-decorator]
    def notify_crm(self: Task, url: str, payload: dict[str, Any], failures: int = 0) -> None:
        try:
            response = requests.post(url, json=payload, timeout=CALLBACK_TIMEOUT)
            if response.status_code >= 300:
                raise CallbackFailed(f"callback answered {response.status_code}")
        except (requests.RequestException, CallbackFailed) as exc:
            decision = decide(CallbackFailed(str(exc)), failures + 1, policy, rng)
            if decision.action is Action.RETRY:
                raise self.retry(
                    args=[url, payload], kwargs={"failures": failures + 1}, countdown=decision.delay
                ) from exc
            _dead_letter(
                holder.get(),
                self,
                {"url": url, "payload": payload},
                exc,
                reason="callback",
                attempt=failures + 1,
            )


def _register_message_task(
    app: Celery, name: str, handler: Handler, holder: RuntimeHolder, policy: RetryPolicy, rng: random.Random
) -> None:
    @app.task(name=name, bind=True, max_retries=None, shared=False)  # type: ignore[untyped-decorator]
    def run(self: Task, message: dict[str, Any], failures: int = 0) -> dict[str, Any]:
        return execute(self, holder.get(), message, handler, failures=failures, policy=policy, rng=rng)


def execute(
    task: Task,
    runtime: WorkerRuntime,
    message: Mapping[str, Any],
    handler: Handler,
    *,
    failures: int,
    policy: RetryPolicy,
    rng: random.Random,
) -> dict[str, Any]:
    """Run one attempt; retry or dead-letter failures as :func:`worker.retry.decide` says."""
    started = time.perf_counter()
    attempt = failures + 1
    runtime.calls.reset()
    try:
        outcome = handler(runtime, parse_message(message))
    except LockBusy as busy:
        # Another event of this contact is being applied: come back soon, this is not a failure.
        raise task.retry(
            args=[message], kwargs={"failures": failures}, countdown=rng.uniform(0.2, 1.0)
        ) from busy
    except Exception as exc:
        decision = decide(exc, attempt, policy, rng)
        _log_outcome(task, message, decision.action.value, attempt, runtime, started, reason=decision.reason)
        if decision.action is Action.RETRY:
            runtime.stats.incr("retried")
            raise task.retry(args=[message], kwargs={"failures": attempt}, countdown=decision.delay) from exc
        _dead_letter(runtime, task, message, exc, reason=decision.reason, attempt=attempt)
        return {"status": "dead_lettered", "reason": decision.reason}
    runtime.stats.incr(outcome.status)
    _log_outcome(task, message, outcome.status, attempt, runtime, started)
    for call in outcome.plan:
        log.info(
            "dry run %s/%s: %s", message.get("source", ""), message.get("crm_contact_id", ""), call.describe()
        )
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
