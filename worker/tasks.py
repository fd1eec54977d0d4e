"""Celery tasks: thin shells that parse the message, call the service and apply the retry decision.

Every message task takes the message (``args=[message]`` or ``kwargs={"message": ...}``) plus
``failures`` (how many attempts failed so far) and ``replay_of``; any other call is dead-lettered as
``invalid_message`` with the arguments as received (see :mod:`ktsync.worker.calls`). Waiting for
another event of the same contact (a busy per-contact lock) requeues the task without counting as a
failure. What Flower and ``celery events`` show of a task is a summary (:mod:`ktsync.worker.request`);
task results carry outcome slugs and ids only, since they reach Flower too.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import time
import traceback
from collections.abc import Mapping
from typing import Any

import redis
import requests
from celery import Celery, Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from ktsync.config.registry import TenantRefused
from ktsync.config.settings import Settings
from ktsync.core.broker import ENQUEUED_AT_HEADER
from ktsync.core.contract import TASK_NAMES, ContractError, Message, parse_message
from ktsync.core.errors import KtsyncError
from ktsync.core.lanes import DEFAULT_LANE, Lane, fairness_key
from ktsync.core.summary import summary
from ktsync.core.tenants import DEFAULT_TENANT, is_tenant_name, tenant_of
from ktsync.worker.calls import read_call
from ktsync.worker.credentials import Verdict
from ktsync.worker.deadletter import DeadLetter, RedisDeadLetterStore
from ktsync.worker.handlers import HANDLERS, Handler
from ktsync.worker.klicktipp.errors import AuthError
from ktsync.worker.reconcile import reconcile
from ktsync.worker.request import MessageRequest, NotifyRequest, PrivateRequest
from ktsync.worker.retry import Action, RetryPolicy, decide
from ktsync.worker.runtime import Tenants, WorkerRuntime, defer_spacing
from ktsync.worker.schedule import Parked
from ktsync.worker.service import SyncOutcome

log = logging.getLogger(__name__)

NOTIFY_TASK = "ktsync.notify_crm"
RECONCILE_TASK = "ktsync.reconcile"
CALLBACK_TIMEOUT = 10.0


class CallbackFailed(KtsyncError):
    """The CRM's callback URL did not take the result; worth retrying."""

    reason = "callback"
    retryable = True
    retry_after: float | None = None


class CredentialRefused(KtsyncError):
    """This worker's credential is marked refused: its tasks wait for healthy workers."""

    reason = "credential_refused"


class PoisonMessage(KtsyncError):
    """Delivered more than ``deadletter.max_deliveries`` times, no attempt finished: it kills its worker."""

    reason = "poison"

    def __init__(self, deliveries: int) -> None:
        super().__init__(f"delivered {deliveries} times without an attempt finishing: it kills its worker")


# Redis (ktsync's state and the broker) unreachable, e.g. restarting: no fault of the message.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class AppSender:
    """Publishes tasks on the app's broker, on a lane's queue (for replays, reconciliation, the schedule)."""

    def __init__(self, app: Celery, settings: Settings, lane: Lane = DEFAULT_LANE) -> None:
        self._app, self._worker, self._lane = app, settings.worker, lane

    def send(
        self,
        task: str,
        args: list[Any],
        kwargs: dict[str, Any],
        task_id: str,
        *,
        queue: str = "",
        enqueued_at: float | None = None,
    ) -> str:
        """``queue`` overrides the sender's lane; ``enqueued_at`` keeps a message's first enqueue time."""
        described = summary(args[0]) if args and isinstance(args[0], Mapping) else task
        result = self._app.send_task(
            task, args=args, kwargs=kwargs, task_id=task_id or None,
            queue=queue or self._worker.lane_queue(self._lane), argsrepr=described, kwargsrepr="",
            headers={ENQUEUED_AT_HEADER: time.time() if enqueued_at is None else enqueued_at},
        )  # fmt: skip
        return str(result.id)

    def queue_of(self, entry: Parked) -> str:
        """The queue a parked or deferred task goes back to (entries from before lanes: the live queue)."""
        return entry.queue or self._worker.lane_queue(Lane.LIVE)

    def publish(self, entry: Parked) -> None:
        """Publish a parked or deferred task to its queue."""
        self.send(entry.task, list(entry.args), dict(entry.kwargs), entry.id,
                  queue=self.queue_of(entry), enqueued_at=entry.enqueued_at)  # fmt: skip


def register_tasks(app: Celery, holder: Tenants, policy: RetryPolicy) -> None:
    """Define ktsync's tasks on ``app``; they fetch their dependencies from ``holder``."""
    rng = random.Random()
    for kind, handler in HANDLERS.items():
        _register_message_task(app, TASK_NAMES[kind], handler, holder, policy, rng)

    @app.task(name=RECONCILE_TASK, shared=False, Request=PrivateRequest)  # type: ignore[untyped-decorator]
    def reconcile_task() -> dict[str, int]:
        totals = {"refetched": 0, "status_checks": 0, "replayed": 0}
        for tenant in holder.view().enabled():  # every tenant's contacts, each within its own stores
            try:
                runtime = holder.get(tenant)
            except (KtsyncError, ValueError) as exc:  # one tenant's broken settings stop no other's
                log.error("reconcile: tenant %s skipped: %s", tenant, exc)
                continue
            report = reconcile(
                state=runtime.stores.state,
                dead_letters=runtime.stores.dead_letters,
                settings=runtime.settings,
                crm_sources=set(runtime.services.fetchers),
                sender=AppSender(app, runtime.settings, Lane.BULK),
            )
            log.info("reconcile%s: %d re-fetched from CRMs, %d status checks, %d dead letters replayed",
                     "" if tenant == DEFAULT_TENANT else f" ({tenant})",
                     report.refetched, report.status_checks, report.replayed)  # fmt: skip
            totals["refetched"] += report.refetched
            totals["status_checks"] += report.status_checks
            totals["replayed"] += report.replayed
        return totals

    @app.task(name=NOTIFY_TASK, bind=True, max_retries=None, shared=False, Request=NotifyRequest)  # type: ignore[untyped-decorator]
    def notify_crm(self: Task, url: str, payload: dict[str, Any], failures: int = 0) -> dict[str, Any]:
        attempt = Attempt(self, holder.get(), {"url": url, "payload": payload}, failures, None)
        try:
            response = requests.post(url, json=payload, timeout=CALLBACK_TIMEOUT)
            if response.status_code >= 300:
                raise CallbackFailed(f"callback answered {response.status_code}")
        except (requests.RequestException, CallbackFailed) as exc:
            decision = decide(CallbackFailed(str(exc)), failures + 1, policy, rng)
            if decision.action is Action.RETRY:
                return attempt.later(decision.delay, failures + 1, args=(url, payload))
            attempt.dead_letter(exc, "callback")
            return {"status": "dead_lettered", "reason": "callback"}
        return {"status": "delivered"}


def _register_message_task(
    app: Celery,
    name: str,
    handler: Handler[Any],
    holder: Tenants,
    policy: RetryPolicy,
    rng: random.Random,
) -> None:
    @app.task(name=name, bind=True, max_retries=None, shared=False, Request=MessageRequest)  # type: ignore[untyped-decorator]
    def run(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # Any call shape is taken: an invalid one is dead-lettered as received, not lost to a TypeError.
        call = read_call(args, kwargs)
        try:
            runtime, refused = tenant_runtime(holder, call.message)
            attempt = Attempt(
                self, runtime, call.message, call.failures, call.replay_of, problem=call.problem or refused
            )
            return execute(attempt, handler, policy=policy, rng=rng)
        except REDIS_DOWN as exc:
            # Never ack (a failed task is acked, and lost) nor dead-letter it: requeue it, and should the
            # broker be unreachable too, it stays unacknowledged and comes back after the visibility timeout.
            log.warning("task=%s id=%s requeued: Redis unreachable (%s)", name, self.request.id, exc)
            raise Reject(exc, requeue=True) from exc


def tenant_runtime(holder: Tenants, message: Mapping[str, Any]) -> tuple[WorkerRuntime, KtsyncError | None]:
    """The runtime of the message's tenant; for a tenant this deployment does not serve (unknown,
    disabled, or whose settings or secrets cannot be used), the default tenant's runtime and the reason,
    so that the message is dead-lettered as ``config`` there with what arrived, never dropped. A value
    that is not a tenant name at all is left to the contract (``invalid_message``, naming the field)."""
    tenant = tenant_of(message)
    if tenant == DEFAULT_TENANT or not is_tenant_name(tenant):
        return holder.get(), None
    try:
        return holder.get(tenant), None
    except TenantRefused as exc:
        return holder.get(), exc
    except (KtsyncError, ValueError) as exc:  # its settings, secrets or credentials cannot be used
        log.error("tenant %s cannot be served: %s", tenant, exc)
        return holder.get(), TenantRefused(tenant, f"tenant {tenant!r} cannot be served: {exc}")


class Attempt:
    """One delivery of a task: its message, its lane, how many attempts failed before, what to do next."""

    def __init__(
        self,
        task: Task,
        runtime: WorkerRuntime,
        message: Mapping[str, Any],
        failures: int,
        replay_of: str | None,
        *,
        problem: ContractError | KtsyncError | None = None,
    ) -> None:
        self.task, self.runtime, self.message = task, runtime, message
        self.failures, self.replay_of, self.problem = failures, replay_of, problem
        self.number = failures + 1
        self.id = str(task.request.id)
        delivery = task.request.delivery_info or {}
        # The lane is the queue the message came from: producers in any language only pick a queue.
        self.lane = runtime.settings.worker.lane_of(delivery.get("routing_key"))
        self.queue = runtime.settings.worker.lane_queue(self.lane)
        self.enqueued_at = enqueued_at(task.request)

    def event(self) -> Message:
        """The validated message; a ContractError (dead-lettered as invalid_message) for an invalid call."""
        if self.problem is not None:
            raise self.problem
        return parse_message(self.message)

    def _later_kwargs(self, failures: int) -> dict[str, Any]:
        return {"failures": failures, **({"replay_of": self.replay_of} if self.replay_of else {})}

    def _entry(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Parked:
        return Parked(str(self.task.name), args, kwargs, self.id, self.queue, self.enqueued_at)

    def later(self, delay: float, failures: int, args: tuple[Any, ...] | None = None) -> dict[str, Any]:
        """Run again after ``delay``: a broker countdown when short, the Redis schedule when long."""
        args = args if args is not None else (self.message,)
        kwargs = self._later_kwargs(failures)
        if delay <= self.runtime.settings.retry.max_broker_countdown:
            # The summary the task's request made on receipt (see worker/request); none outside a worker.
            described = getattr(self.task.request, "argsrepr", None) or summary(self.message)
            headers = {ENQUEUED_AT_HEADER: self.enqueued_at} if self.enqueued_at is not None else {}
            try:
                raise self.task.retry(args=list(args), kwargs=kwargs, countdown=delay, argsrepr=described,
                                      kwargsrepr="", queue=self.queue, headers=headers)  # fmt: skip
            except Reject as failed:  # the broker did not take the retry; Celery's Reject would drop the task
                if not isinstance(failed.reason, (OperationalError, *REDIS_DOWN)):
                    raise
                raise Reject(failed.reason, requeue=True) from failed
        self.runtime.shared.schedule.park(self._entry(args, kwargs), time.time() + delay)
        self.runtime.stores.stats.incr("parked")
        return {"status": "parked", "delay": delay}

    def defer(self, delay: float) -> dict[str, Any]:
        """Wait for the budget out of the worker slot: in the key queue of this task's fairness key,
        released in turn, at the budget's pace (see :mod:`ktsync.worker.keyqueues`). No attempt is used up."""
        runtime = self.runtime
        key = fairness_key(runtime.klicktipp.account, self.lane)
        entry = self._entry((self.message,), self._later_kwargs(self.failures))
        due = runtime.shared.key_queues.defer(
            key, entry, delay=delay, spacing=defer_spacing(runtime.settings)
        )
        runtime.stores.stats.incr("deferred")
        return {"status": "deferred", "delay": round(max(0.0, due - time.time()), 3), "lane": self.lane.value}

    def dead_letter(self, exc: Exception, reason: str) -> None:
        _dead_letter(
            self.runtime,
            self.task,
            self.message,
            exc,
            reason=reason,
            attempt=self.number,
            letter_id=self.replay_of,
        )


def execute(
    attempt: Attempt, handler: Handler[Any], *, policy: RetryPolicy, rng: random.Random
) -> dict[str, Any]:
    """Run one attempt; wait, retry or dead-letter as the situation and :func:`decide` say."""
    runtime, started = attempt.runtime, time.perf_counter()
    runtime.stores.telemetry.begin(
        str(attempt.message.get("source", "")), str(attempt.message.get("crm_contact_id", "")), attempt.lane
    )
    runtime.stores.telemetry.note("event", type=attempt.message.get("type"), task=attempt.id, attempt=attempt.number,
                           replay_of=attempt.replay_of)  # fmt: skip
    counted: list[str] = []
    forget = False
    latency: tuple[Lane, float] | None = None
    done: SyncOutcome | None = None  # once the handler returned: its held writes go with finish
    try:
        deliveries, refused = runtime.stores.guards.admit(attempt.id)
        try:
            if deliveries > runtime.settings.deadletter.max_deliveries:
                raise PoisonMessage(deliveries)
            if refused:
                raise CredentialRefused("KlickTipp refuses this worker's credentials")
            outcome = handler(runtime, attempt.event(), str(attempt.task.name))
        except REDIS_DOWN:
            raise  # not the message's failure: the task requeues it (see _register_message_task)
        except Exception as exc:
            return _failed(attempt, exc, started, policy=policy, rng=rng)
        done = outcome
        counted, forget = _succeeded(attempt, outcome)
        if attempt.enqueued_at is not None:
            latency = (attempt.lane, time.time() - attempt.enqueued_at)
        _log_outcome(attempt.task, attempt.message, outcome.status, attempt.number, runtime, started)
    finally:
        runtime.finish(attempt.id, counted, forget=forget, latency=latency,
                       held=done.held if done is not None else ())  # fmt: skip
    for call in outcome.plan:
        log.info("dry run %s: %s", attempt.message.get("crm_contact_id", ""), call.describe())
    return {"status": outcome.status, "klicktipp_id": outcome.klicktipp_id}


def _succeeded(attempt: Attempt, outcome: SyncOutcome) -> tuple[list[str], bool]:
    """The outcome counters to add, and whether the contact's timeline goes (it was deleted)."""
    counted = [outcome.status]
    if attempt.replay_of and _replayed(attempt.runtime, attempt.replay_of):
        counted.append("replay_succeeded")
    deleted = outcome.status.startswith("deleted_")
    if not deleted:
        attempt.runtime.stores.telemetry.note("outcome", status=outcome.status, klicktipp_id=outcome.klicktipp_id,
                                       calls=attempt.runtime.stores.telemetry.calls_made())  # fmt: skip
    return counted, deleted


def _replayed(runtime: WorkerRuntime, letter_id: str) -> bool:
    """Remove the dead letter a successful replay came from: the tenant's own, or — a message that
    arrived while its tenant was unknown or disabled — the default tenant's."""
    if runtime.stores.dead_letters.remove(letter_id):
        return True
    if runtime.tenant == DEFAULT_TENANT:
        return False
    return RedisDeadLetterStore(runtime.shared.redis, runtime.settings.deployment_prefix).remove(letter_id)


def _failed(
    attempt: Attempt, exc: Exception, started: float, *, policy: RetryPolicy, rng: random.Random
) -> dict[str, Any]:
    runtime = attempt.runtime
    if isinstance(exc, CredentialRefused | AuthError):
        _refused(attempt, exc)  # raises Reject unless KlickTipp refused only this operation
    decision = decide(exc, attempt.number, policy, rng)
    if decision.asked is not None:
        log.warning("task=%s id=%s: KlickTipp asked to wait %gs; waiting %gs (rate.max_pause)",
                    attempt.task.name, attempt.id, decision.asked, decision.delay)  # fmt: skip
    if decision.action is Action.RETRY and not decision.counts:
        # Waiting (busy contact, spent budget, KlickTipp's 429): not a failure, not worth a log line each.
        runtime.stores.stats.incr(decision.reason)
        if not decision.defer:
            return attempt.later(decision.delay, attempt.failures)
        if decision.reason == "throttled":
            runtime.stores.telemetry.throttled()
        return attempt.defer(decision.delay)
    _log_outcome(attempt.task, attempt.message, decision.action.value, attempt.number, runtime, started,
                 reason=decision.reason)  # fmt: skip
    if decision.action is Action.RETRY:
        runtime.stores.stats.incr("retried")
        return attempt.later(decision.delay, attempt.number)
    attempt.dead_letter(exc, decision.reason)
    return {"status": "dead_lettered", "reason": decision.reason}


def _refused(attempt: Attempt, exc: Exception) -> None:
    """KlickTipp refused a call (after one re-login), or this worker's credential is known refused.

    Unless one real call shows the credential works — then only this operation was refused, and the
    task is dead-lettered as ``auth`` by the caller — the task goes back to its queue for a healthy
    worker (never dead-lettered for another worker's bad password), and this worker steps aside."""
    runtime = attempt.runtime
    if runtime.tenant != DEFAULT_TENANT:
        # A tenant's credentials are the same on every worker: no healthy worker to hand the task to.
        # Dead-lettered as ``auth`` (replayed once `ktsync tenant update` fixed them); no worker pauses.
        runtime.stores.stats.incr("auth_alarm")
        log.error("ALARM: KlickTipp refuses tenant %s's credentials (%s); its tasks are dead-lettered as "
                  "auth until `ktsync tenant update %s` fixes them", runtime.tenant, exc, runtime.tenant)  # fmt: skip
        return
    if isinstance(exc, AuthError):
        verdict, newly = runtime.klicktipp.credential.judge(exc)
        if verdict is Verdict.OPERATION:
            return
        if newly:
            runtime.stores.stats.incr("auth_alarm")
            log.error("ALARM: KlickTipp refuses this worker's credentials (%s); its tasks go back to the queue "
                      "for healthy workers. Fix KLICKTIPP_* for this worker.", exc)  # fmt: skip
    runtime.stores.stats.incr("requeued_credential")
    log.warning(
        "task=%s id=%s requeued: this worker's credentials are refused", attempt.task.name, attempt.id
    )
    raise Reject(exc, requeue=True)


def _dead_letter(
    runtime: WorkerRuntime,
    task: Task,
    message: Mapping[str, Any],
    exc: Exception,
    *,
    reason: str,
    attempt: int,
    letter_id: str | None = None,
) -> None:
    now = time.time()
    runtime.stores.dead_letters.add(
        DeadLetter(
            id=letter_id or str(task.request.id),
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
    runtime.stores.stats.incr("dead_lettered")


def _error_details(exc: Exception, reason: str) -> dict[str, Any]:
    to_dict = getattr(exc, "to_dict", None)
    details: dict[str, Any] = dict(to_dict()) if callable(to_dict) else {}
    details.setdefault("type", type(exc).__name__)
    details.setdefault("message", str(exc))
    if reason == "unexpected":
        details["traceback"] = "".join(traceback.format_exception(exc))
    return details


def enqueued_at(request: Any) -> float | None:
    """When the message was first enqueued (the ``ktsync_enqueued_at`` header), None when it does not say."""
    value: Any = getattr(request, ENQUEUED_AT_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(ENQUEUED_AT_HEADER)
    try:
        stamp = float(value)
    except (TypeError, ValueError):
        return None
    return stamp if math.isfinite(stamp) else None


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
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    calls = runtime.stores.telemetry.calls_made()
    extra = {"task": task.name, "task_id": task.request.id, "outcome": outcome, "reason": reason or None,
             "source": fields.get("source", ""), "crm_contact_id": fields.get("crm_contact_id", ""),
             "attempt": attempt, "calls": calls, "duration_ms": duration_ms}  # fmt: skip
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
        calls,
        duration_ms,
        extra=extra,  # top-level fields in --log-format json
    )
