"""Validate messages with the contract and publish them as Celery tasks on the Redis broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import BatchPublishError, OperationalError

from ktsync.config.celery import celery_config
from ktsync.config.registry import RedisTenantRegistry, TenantView, WatchedTenants
from ktsync.config.settings import Settings
from ktsync.core.broker import ENQUEUED_AT_HEADER
from ktsync.core.contract import TASK_NAMES, MessageType, parse_message
from ktsync.core.lanes import DEFAULT_LANE, Lane, parse_lane
from ktsync.core.summary import summary
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name
from ktsync.producers.backlog import Backpressure
from ktsync.producers.tenancy import (
    TenantRejected,
    TenantSource,
    check_tenant,
    needs_registry,
    stamped,
    tenant_problem,
)

PIPELINE = 500  # messages per Redis round trip
__all__ = ["ENQUEUED_AT_HEADER", "EnqueueError", "Producer", "TenantRejected", "summary"]


def _task_for(message: Mapping[str, Any], validated: bool) -> str:
    kind = MessageType(str(message.get("type"))) if validated else parse_message(dict(message)).type
    return TASK_NAMES[kind]


class EnqueueError(RuntimeError):
    """The broker could not take the messages (e.g. Redis unreachable or gone mid-way).

    What an earlier call enqueued stays enqueued. ``uncertain`` is False when the failing call sent
    nothing (no connection to begin with), True when Redis went away while its pipelined batches
    were on the wire: some of its messages may be queued (kombu cannot tell). Enqueueing them again
    is harmless: every task is idempotent, contacts already synced cost no KlickTipp calls.
    """

    def __init__(self, message: str, *, uncertain: bool = False) -> None:
        super().__init__(message)
        self.uncertain = uncertain


# Redis refused or dropped the connection: kombu says OperationalError, a failed pipelined batch
# BatchPublishError (its cause is the redis error), and some paths let redis-py's own error through.
BROKER_DOWN = (OperationalError, BatchPublishError, redis.RedisError)


def broker_down(exc: BaseException) -> EnqueueError:
    """One line for the operator: what failed and Redis's own words (not kombu's wrapper)."""
    uncertain = isinstance(exc, BatchPublishError)  # a connection that broke, not one never made
    cause = exc.__cause__ if uncertain and exc.__cause__ else exc
    words = " ".join(str(cause).split()) or type(cause).__name__
    return EnqueueError(f"could not enqueue: Redis is unreachable ({words})", uncertain=uncertain)


class Producer:
    """Enqueue contract-valid messages; invalid ones raise :class:`ktsync.core.contract.ContractError`.

    ``lane`` is where messages go unless a call says otherwise: ``live`` (the default) for changes
    someone is waiting for, ``bulk`` for imports, resyncs and replays (see :mod:`ktsync.core.lanes`).

    ``tenant`` binds the producer to one tenant (default: the settings' tenant; None with the
    ``default`` tenant's settings: each message names its own): it is set on every message that names
    none, and a message naming another is refused. A message for a tenant the deployment does not
    serve (unknown or disabled in the registry) raises :class:`TenantRejected` (a ``ContractError`` on
    the field ``tenant``); ``tenants`` replaces the registry read through Redis (tests, twins).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        lane: Lane | str = DEFAULT_LANE,
        tenant: str | None = None,
        tenants: TenantSource | None = None,
    ) -> None:
        bound = tenant if tenant is not None else settings.tenant
        if not is_tenant_name(bound):
            raise TenantRejected(str(bound), f"{TENANT_RULE}, got {bound!r}")
        self._app = Celery("ktsync-producer", set_as_current=False)
        self._app.conf.update(celery_config(settings))
        self._settings = settings
        self.lane = parse_lane(lane)
        self.tenant: str | None = None if tenant is None and bound == DEFAULT_TENANT else bound
        self._tenants = tenants
        self._backpressure: dict[str, Backpressure] = {}
        self._redis: redis.Redis | None = None

    def _queue(self, lane: Lane | str | None) -> str:
        return self._settings.worker.lane_queue(self.lane if lane is None else parse_lane(lane))

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self._settings.redis_url)
        return self._redis

    def tenant_view(self) -> TenantView:
        """The tenants the deployment serves now (the registry, re-read when it changed)."""
        if self._tenants is None:
            registry = RedisTenantRegistry(self._client(), self._settings.deployment_prefix)
            self._tenants = WatchedTenants(self._settings.tenants, registry)
        try:
            return self._tenants.current()
        except BROKER_DOWN as exc:
            raise EnqueueError(f"could not read the tenant registry: Redis is unreachable ({exc})") from exc

    def refusal(self) -> str | None:
        """Why the producer's own tenant takes no messages now (None: it does, or it is unbound):
        a command checks once up front instead of rejecting every line for the same reason."""
        if self.tenant is None or self.tenant == DEFAULT_TENANT:
            return None
        return tenant_problem(self.tenant_view(), self.tenant)

    def admit(self, message: Mapping[str, Any], *, tenant: str | None = None) -> dict[str, Any]:
        """The message as this producer enqueues it: its tenant set (see the class) and served.

        :class:`TenantRejected` names the field ``tenant`` and why; the rest of the contract is not
        checked here (see :func:`ktsync.core.contract.parse_message`)."""
        body = stamped(message, self.tenant if tenant is None else tenant)
        if needs_registry(body):
            check_tenant(self.tenant_view(), body)
        return body

    def enqueue(
        self, message: Mapping[str, Any], *, lane: Lane | str | None = None, tenant: str | None = None
    ) -> str:
        """Validate and enqueue one message; return its task id."""
        return self.enqueue_many([message], lane=lane, tenant=tenant)[0]

    def forget(
        self,
        source: str,
        crm_contact_id: str,
        *,
        email: str | None = None,
        occurred_at: float | None = None,
        event_id: str | None = None,
        tenant: str | None = None,
    ) -> str:
        """Enqueue a privacy deletion (GDPR erasure) of one CRM contact, in the live lane: a
        ``contact.deleted`` with ``privacy: true``, requested ``occurred_at`` (default: now), for
        ``tenant`` (default: the producer's). Return its task id; the worker deletes the contact in
        the tenant's KlickTipp account and purges ktsync's copies."""
        message: dict[str, Any] = {
            "v": 1,
            "type": str(MessageType.DELETED),
            "source": source,
            "crm_contact_id": crm_contact_id,
            "occurred_at": time.time() if occurred_at is None else occurred_at,
            "privacy": True,
        }
        if email is not None:
            message["email"] = email
        if event_id is not None:
            message["event_id"] = event_id
        return self.enqueue(message, lane=Lane.LIVE, tenant=tenant)

    def enqueue_many(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        validated: bool = False,
        lane: Lane | str | None = None,
        tenant: str | None = None,
    ) -> list[str]:
        """Validate every message first (unless the caller just did), then enqueue them all pipelined.

        ``validated`` skips the contract, never the tenant: every message's tenant is set and checked
        (see :meth:`admit`; ``tenant`` overrides the producer's for this call) before any is sent.

        The publishes go to Redis in pipelined batches (kombu's ``Producer.batch``): one round trip
        per ``PIPELINE`` messages instead of one each. Either every message is enqueued or
        :class:`EnqueueError` is raised: batches flushed before the error are enqueued, the failing
        one may be in part (see :class:`EnqueueError`). Nothing waits
        here for room in the bulk lane: a bulk producer calls :meth:`wait_for_room` first.
        """
        queue = self._queue(lane)
        whose = self.tenant if tenant is None else tenant
        bodies = [stamped(m, whose) for m in messages]
        tasks = [_task_for(body, validated) for body in bodies]
        if any(needs_registry(body) for body in bodies):
            view = self.tenant_view()
            for body in bodies:
                check_tenant(view, body)
        batch = list(zip(tasks, bodies, strict=True))
        try:
            with self._app.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE):
                # The enqueue time travels as a header: `ktsync status` reports the oldest message's age.
                headers = {ENQUEUED_AT_HEADER: time.time()}
                return [
                    self._app.send_task(
                        name,
                        args=[body],
                        queue=queue,
                        producer=producer,
                        headers=headers,
                        argsrepr=summary(body),
                        kwargsrepr="",
                    ).id
                    for name, body in batch
                ]
        except BROKER_DOWN as exc:
            raise broker_down(exc) from exc

    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str:
        """Publish one task as it is, in the producer's lane (for replays: the message was validated
        when first enqueued)."""
        try:
            described = summary(args[0]) if args and isinstance(args[0], Mapping) else task
            result = self._app.send_task(
                task,
                args=args,
                kwargs=kwargs,
                task_id=task_id,
                queue=self._queue(None),
                argsrepr=described,
                kwargsrepr="",
                headers={ENQUEUED_AT_HEADER: time.time()},
            )
            return str(result.id)
        except BROKER_DOWN as exc:
            raise broker_down(exc) from exc

    def wait_for_room(
        self, needed: int, on_wait: Callable[[int], None] | None = None, *, tenant: str | None = None
    ) -> int:
        """Flow control for bulk work: block while ``needed`` more messages would take the tenant's
        bulk backlog (queued + its deferred, see :mod:`ktsync.producers.backlog`) above
        ``bulk.max_backlog``; returns the backlog seen last. ``tenant`` defaults to the producer's
        (``default`` when unbound). ``on_wait(backlog)`` is called before each pause.
        :class:`EnqueueError` when Redis is gone."""
        whose = tenant or self.tenant or DEFAULT_TENANT
        try:
            if whose not in self._backpressure:
                self._backpressure[whose] = Backpressure(self._client(), self._settings, tenant=whose)
            return self._backpressure[whose].wait_for_room(needed, on_wait)
        except (OperationalError, redis.RedisError) as exc:
            raise EnqueueError(f"could not read the bulk backlog: Redis is unreachable ({exc})") from exc

    def close(self) -> None:
        self._app.close()
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
