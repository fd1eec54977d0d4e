"""Everything a worker process needs to run tasks: the parts every tenant shares, built once per
process, and each tenant's own parts, built on its first task and again when the tenant changes.

A task names the parts it uses: ``runtime.services.sync``, ``runtime.stores.dead_letters``,
``runtime.shared.schedule``. Nothing is handed whole to the service layer: it gets its
:class:`~ktsync.worker.service.SyncDeps`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis

from ktsync.config.model import TenantSpec
from ktsync.config.registry import RedisTenantRegistry, TenantView, WatchedTenants
from ktsync.config.secrets import Keyring
from ktsync.config.settings import Settings, tenant_settings
from ktsync.config.tenants import fingerprint, tenant_env
from ktsync.core.dedupe import RedisDeduper
from ktsync.core.lanes import Lane
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.worker.client_setup import klicktipp_client
from ktsync.worker.credentials import CredentialCheck, RedisCredentialHealth, credential_id, verify
from ktsync.worker.crm import CrmFetcher, fetchers_from_env
from ktsync.worker.deadletter import Bounds, DeadLetterStore, RedisDeadLetterStore
from ktsync.worker.deletions import Deletions
from ktsync.worker.erasure import Eraser, ErasureStores, RedisTimelines
from ktsync.worker.guards import Guards, RedisGuards
from ktsync.worker.keyqueues import KeyQueues, RedisKeyQueues
from ktsync.worker.klicktipp.auth import auth_from_env
from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.lanemetrics import stage_latency
from ktsync.worker.locks import TRANSIENT, Locks, RedisLocks
from ktsync.worker.outbound import Outbound, RedisOutbound
from ktsync.worker.ratelimit import Limits, RedisRateLimiter, limiter_gate
from ktsync.worker.ratelimit.base import with_margin
from ktsync.worker.ratelimit.gate import CallContext, pause_on_429
from ktsync.worker.recovery.keys import slot_prefix
from ktsync.worker.refcache import RedisReferenceCache
from ktsync.worker.reference import ReferenceData
from ktsync.worker.refresh import Refresh
from ktsync.worker.review import RedisReviewList, ReviewList
from ktsync.worker.schedule import RedisSchedule, Schedule
from ktsync.worker.service import ContactSync, Notify, SyncDeps
from ktsync.worker.session import WorkerSession
from ktsync.worker.state import Held, RedisStateStore, StateStore
from ktsync.worker.stats import RedisStats, Stats
from ktsync.worker.telemetry import Telemetry
from ktsync.worker.tenant_schedule import TenantSchedule

log = logging.getLogger(__name__)


def account_key(env: Mapping[str, str]) -> str:
    """The rate-limit account: one budget per KlickTipp login (hashed: no user names in Redis keys).
    Two tenants on one KlickTipp login share its budget, as KlickTipp counts it."""
    username = env.get("KLICKTIPP_USERNAME", "").strip().lower()
    return hashlib.sha256(username.encode()).hexdigest()[:16]


def limits(settings: Settings) -> Limits:
    rate = settings.rate
    return with_margin(rate.per_second, rate.burst, rate.max_in_flight, rate.bulk_share)


MID_TASK_WAIT = 30.0  # seconds a task that already called KlickTipp waits in place for the budget


def call_context(
    settings: Settings, telemetry: Telemetry, *, alone: bool = True
) -> Callable[[], CallContext]:
    """Who the current call is for: the task's lane, and whether it already made a call (then it goes
    first, and waits longer in place: deferring it would repeat its calls).

    ``alone``: the deployment serves one tenant. With several, a bulk task's first call never waits in
    place: its budget is its tenant's, and the worker slot it would hold is another tenant's turn. It
    is deferred to its tenant's key queue at once and comes back at the tenant's pace."""

    def context() -> CallContext:
        followup = telemetry.calls_made() > 0
        lane = telemetry.lane()
        wait = settings.rate.max_wait if alone or lane is Lane.LIVE else 0.0
        return CallContext(lane, followup, max(wait, MID_TASK_WAIT) if followup else wait)

    return context


def defer_spacing(settings: Settings) -> float:
    """Seconds between two releases of one fairness key's deferred tasks: one token's time."""
    rate = settings.rate.per_second
    return 1.0 / rate if rate > 0 else 0.0


def dead_letter_bounds(settings: Settings) -> Bounds:
    return Bounds(settings.deadletter.max_entries, settings.deadletter.max_age_days * 24 * 3600)


def observers(*each: Callable[[CallRecord], None]) -> Callable[[CallRecord], None]:
    def observe(record: CallRecord) -> None:
        for observer in each:
            observer(record)

    return observe


@dataclass(frozen=True)
class Shared:
    """One per process, every tenant's: the deployment's settings, the worker session, one Redis
    client (one connection pool), and what is scheduled across tenants: parked retries, key queues,
    the mover's and the recovery's locks."""

    settings: Settings
    session: WorkerSession
    redis: redis.Redis
    schedule: Schedule
    key_queues: KeyQueues
    locks: Locks

    @classmethod
    def build(cls, settings: Settings, session: WorkerSession) -> Shared:
        store = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        prefix = settings.deployment_prefix
        return cls(settings, session, store, RedisSchedule(store, prefix), RedisKeyQueues(store, prefix),
                   RedisLocks(store, prefix, session=session.id))  # fmt: skip


@dataclass(frozen=True)
class KlickTippAccess:
    """One tenant's KlickTipp: its account (budget), client, reference data and credential health."""

    account: str
    client: KlickTippClient
    reference: ReferenceData
    credential: CredentialCheck


@dataclass(frozen=True)
class Stores:
    """What ktsync keeps about one tenant's contacts, under the tenant's key prefix."""

    state: StateStore
    dead_letters: DeadLetterStore
    review: ReviewList
    outbound: Outbound
    stats: Stats
    telemetry: Telemetry
    guards: Guards


@dataclass(frozen=True)
class Services:
    """What applies one tenant's events."""

    sync: ContactSync
    deletions: Deletions
    refresh: Refresh
    fetchers: Mapping[str, CrmFetcher]


@dataclass(frozen=True)
class WorkerRuntime:
    """One tenant's runtime: its settings (key prefix, sources, budget) and its parts."""

    settings: Settings
    shared: Shared
    klicktipp: KlickTippAccess
    stores: Stores
    services: Services

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    @classmethod
    def build(
        cls,
        settings: Settings,
        env: Mapping[str, str],
        notify: Notify | None = None,
        *,
        session: WorkerSession | None = None,
        shared: Shared | None = None,
        live_signal: bool = True,
    ) -> WorkerRuntime:
        """``settings`` and ``env`` are the tenant's (see :meth:`Tenants.get`); ``live_signal``: the
        live queue's length counts as this tenant's live work waiting (true only while one tenant is
        served: with several, another tenant's live work must not throttle this one's bulk)."""
        shared = shared or Shared.build(settings, session or WorkerSession.new())
        store, prefix, session_id = shared.redis, settings.key_prefix, shared.session.id
        live_queue = settings.broker_prefix + settings.worker.lane_queue(Lane.LIVE) if live_signal else ""
        limiter = RedisRateLimiter(store, settings.deployment_prefix, live_queue=live_queue)
        account = account_key(env)
        telemetry = Telemetry(store, prefix)
        limited = settings.rate.per_second > 0  # 0: no limiter (benchmarks, budgets known to be unlimited)
        gate = limiter_gate(limiter, account, limits(settings), context=call_context(settings, telemetry, alone=live_signal),
                            on_wait=telemetry.waited, token_prefix=slot_prefix(session_id, os.getpid()), scope=telemetry) if limited else None  # fmt: skip
        pause = [pause_on_429(limiter, account, max_pause=settings.rate.max_pause)] if limited else []
        client = klicktipp_client(
            settings, auth_from_env(env), gate=gate, observer=observers(*pause, telemetry.call)
        )
        credential = credential_id(env)
        locks = RedisLocks(store, prefix, session=session_id)
        reference = ReferenceData(
            client, RedisReferenceCache(store, prefix), locks, ttl=settings.klicktipp.reference_ttl
        )
        stores = Stores(
            state=RedisStateStore(store, prefix, session=session_id),
            dead_letters=RedisDeadLetterStore(store, prefix, dead_letter_bounds(settings)),
            review=RedisReviewList(store, prefix),
            outbound=RedisOutbound(store, prefix, settings.sync.outbound_maxlen),
            stats=RedisStats(store, prefix),
            telemetry=telemetry,
            guards=RedisGuards(store, prefix, credential=credential),
        )
        deps = SyncDeps(client, reference, stores.state, stores.outbound, settings)
        sync, fetchers = ContactSync(deps, notify), fetchers_from_env(env)
        erasure = ErasureStores(
            stores.state, stores.dead_letters, stores.review, stores.outbound,
            TenantSchedule(shared.schedule, settings.tenant), RedisTimelines(store, prefix),
            RedisDeduper(store, prefix, ttl=settings.sync.event_id_ttl),
        )  # fmt: skip
        return cls(
            settings=settings,
            shared=shared,
            klicktipp=KlickTippAccess(
                account,
                client,
                reference,
                CredentialCheck(RedisCredentialHealth(store, prefix, credential), lambda: verify(client)),
            ),
            stores=stores,
            services=Services(
                sync=sync,
                deletions=Deletions(
                    deps, stores.review, Eraser(client, erasure, lease=settings.sync.lock_lease)
                ),
                refresh=Refresh(deps, sync, fetchers),
                fetchers=fetchers,
            ),
        )

    def finish(
        self,
        task_id: str,
        outcomes: Iterable[str],
        *,
        forget: bool = False,
        latency: tuple[Lane, float] | None = None,
        held: Sequence[Held] = (),
    ) -> None:
        """End of a task attempt: the writes the task held back (its commit, its outbound entry: one
        MULTI with the rest), the delivery guard, outcome counters, telemetry and (for an applied
        change) its latency since enqueue, in one round trip."""
        pipe = self.shared.redis.pipeline(transaction=bool(held))
        for write in held:
            write.stage(pipe)
        RedisGuards(pipe, self.settings.key_prefix).finished(task_id)  # (its credential is not read here)
        stats = RedisStats(pipe, self.settings.key_prefix)
        counted = 0
        for outcome in outcomes:
            stats.incr(outcome)
            counted += 1
        if latency is not None:
            stage_latency(pipe, self.settings.key_prefix, *latency)
        # done: a task that reached an outcome (not a retry, a deferral or a dead letter)
        self.stores.telemetry.end(
            pipe, forget=forget, latency=latency[1] if latency is not None else None, done=counted > 0
        )
        try:
            pipe.execute()
        except TRANSIENT:
            for write in held:
                write.lost()
            raise

    def close(self) -> None:
        """Close this tenant's connections (the shared Redis client is closed by its owner)."""
        self.klicktipp.client.close()
        for fetcher in self.services.fetchers.values():
            fetcher.close()


class Tenants:
    """A process's runtimes, one per tenant, built on a tenant's first task and rebuilt when the
    tenant changes in the registry (seen within ``WatchedTenants``'s interval). A forked pool child
    builds its own (sockets must not cross fork). Formerly ``RuntimeHolder``."""

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        notify: Notify | None = None,
        *,
        session: WorkerSession | None = None,
    ) -> None:
        self._settings = settings
        self._env = dict(env)
        self._notify = notify
        self._keyring = Keyring.from_env(self._env)
        # One session for the worker: pool children forked from it hold locks on its behalf.
        self.session = session or WorkerSession.new()
        self._lock = threading.Lock()
        self._pid = 0
        self._shared: Shared | None = None
        self._watched: WatchedTenants | None = None
        self._runtimes: dict[str, tuple[str, WorkerRuntime]] = {}
        self._memo: tuple[TenantView, bool, dict[str, str]] | None = None

    def _fresh(self) -> Shared:
        if self._shared is None or self._pid != os.getpid():
            with self._lock:
                if self._shared is None or self._pid != os.getpid():
                    self._shared = Shared.build(self._settings, self.session)
                    registry = RedisTenantRegistry(self._shared.redis, self._settings.deployment_prefix)
                    self._watched = WatchedTenants(self._settings.tenants, registry)
                    self._runtimes = {}
                    self._pid = os.getpid()
        return self._shared

    def shared(self) -> Shared:
        return self._fresh()

    def view(self) -> TenantView:
        self._fresh()
        return self._current()

    def _current(self) -> TenantView:
        assert self._watched is not None  # set by _fresh
        return self._watched.current()

    def get(self, tenant: str = DEFAULT_TENANT) -> WorkerRuntime:
        """The runtime of ``tenant``; :class:`~ktsync.config.registry.TenantRefused` when this
        deployment does not serve it (unknown or disabled), a ``ConfigError`` or ``SecretError`` when
        its settings or secrets cannot be used."""
        shared = self._fresh()
        view = self._current()
        spec = view.lookup(tenant)
        version = self._version(view, tenant, spec)
        cached = self._runtimes.get(tenant)
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._lock:
            cached = self._runtimes.get(tenant)
            if cached is not None and cached[0] == version:
                return cached[1]
            if spec is None:
                settings, env = self._settings, self._env
            else:
                settings = tenant_settings(self._settings, spec, self._env)
                env = tenant_env(self._env, spec, self._keyring)
            runtime = WorkerRuntime.build(
                settings, env, self._notify, shared=shared, live_signal=self.alone(view)
            )
            if cached is not None:
                log.info("tenant %s changed: its parts were built again", tenant)
            # The replaced runtime may still run a task in another thread: its client is left to be
            # collected, not closed under it.
            self._runtimes[tenant] = (version, runtime)
            return runtime

    def alone(self, view: TenantView) -> bool:
        """Whether the deployment serves one tenant only (see ``WorkerRuntime.build``'s ``live_signal``)."""
        memo = self._memo
        return memo[1] if memo is not None and memo[0] is view else len(view.enabled()) == 1

    def _version(self, view: TenantView, tenant: str, spec: TenantSpec | None) -> str:
        """What a tenant's runtime was built from: its fingerprint, and whether it is served alone;
        worked out once per registry view, not per task."""
        memo = self._memo
        if memo is None or memo[0] is not view:
            memo = self._memo = (view, len(view.enabled()) == 1, {})
        known = memo[2].get(tenant)
        if known is None:
            known = memo[2][tenant] = f"{fingerprint(spec) if spec is not None else 'default'}:{memo[1]}"
        return known

    def close(self) -> None:
        if self._pid == os.getpid():
            for _, runtime in self._runtimes.values():
                runtime.close()
            if self._shared is not None:
                self._shared.redis.close()
        self._runtimes = {}
        self._shared = None


RuntimeHolder = Tenants  # the name before tenants (0.3)
