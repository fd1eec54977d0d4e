"""Everything a worker process needs to run tasks, built once per process from the settings."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis

from ktsync.config.settings import Settings
from ktsync.core.dedupe import RedisDeduper
from ktsync.core.lanes import Lane
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
from ktsync.worker.locks import Locks, RedisLocks
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
from ktsync.worker.state import RedisStateStore, StateStore
from ktsync.worker.stats import RedisStats, Stats
from ktsync.worker.telemetry import Telemetry


def account_key(env: Mapping[str, str]) -> str:
    """The rate-limit account: one budget per KlickTipp login (hashed: no user names in Redis keys)."""
    username = env.get("KLICKTIPP_USERNAME", "").strip().lower()
    return hashlib.sha256(username.encode()).hexdigest()[:16]


def limits(settings: Settings) -> Limits:
    rate = settings.rate
    return with_margin(rate.per_second, rate.burst, rate.max_in_flight, rate.bulk_share)


MID_TASK_WAIT = 30.0  # seconds a task that already called KlickTipp waits in place for the budget


def call_context(settings: Settings, telemetry: Telemetry) -> Callable[[], CallContext]:
    """Who the current call is for: the task's lane, and whether it already made a call (then it goes
    first, and waits longer in place: deferring it would repeat its calls)."""

    def context() -> CallContext:
        followup = telemetry.calls_made() > 0
        wait = settings.rate.max_wait
        return CallContext(telemetry.lane(), followup, max(wait, MID_TASK_WAIT) if followup else wait)

    return context


def defer_spacing(settings: Settings) -> float:
    """Seconds between two releases of one fairness key's deferred tasks: one token's time."""
    rate = settings.rate.per_second
    return 1.0 / rate if rate > 0 else 0.0


def dead_letter_bounds(settings: Settings) -> Bounds:
    return Bounds(settings.deadletter.max_entries, settings.deadletter.max_age_days * 24 * 3600)


def eraser(
    settings: Settings,
    client: KlickTippClient,
    store: redis.Redis,
    *,
    state: StateStore,
    dead_letters: DeadLetterStore,
    review: ReviewList,
    outbound: Outbound,
    schedule: Schedule,
) -> Eraser:
    """The privacy deletions' shell over the runtime's stores, the timelines and the webhook dedupe ids."""
    prefix = settings.key_prefix
    dedupe = RedisDeduper(store, prefix, ttl=settings.sync.event_id_ttl)
    stores = ErasureStores(
        state, dead_letters, review, outbound, schedule, RedisTimelines(store, prefix), dedupe
    )
    return Eraser(client, stores, lease=settings.sync.lock_lease)


def observers(*each: Callable[[CallRecord], None]) -> Callable[[CallRecord], None]:
    def observe(record: CallRecord) -> None:
        for observer in each:
            observer(record)

    return observe


@dataclass
class WorkerRuntime:
    settings: Settings
    account: str
    session: WorkerSession
    client: KlickTippClient
    reference: ReferenceData
    sync: ContactSync
    deletions: Deletions
    state: StateStore
    redis: redis.Redis
    dead_letters: DeadLetterStore
    stats: Stats
    review: ReviewList
    outbound: Outbound
    locks: Locks
    schedule: Schedule
    guards: Guards
    refresh: Refresh
    fetchers: Mapping[str, CrmFetcher]
    telemetry: Telemetry
    key_queues: KeyQueues
    credential: CredentialCheck

    @classmethod
    def build(
        cls,
        settings: Settings,
        env: Mapping[str, str],
        notify: Notify | None = None,
        *,
        session: WorkerSession | None = None,
    ) -> WorkerRuntime:
        session = session or WorkerSession.new()
        store = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        prefix = settings.key_prefix
        live_queue = settings.broker_prefix + settings.worker.lane_queue(Lane.LIVE)
        limiter, account = RedisRateLimiter(store, prefix, live_queue=live_queue), account_key(env)
        telemetry = Telemetry(store, prefix)
        limited = settings.rate.per_second > 0  # 0: no limiter (benchmarks, budgets known to be unlimited)
        gate = limiter_gate(limiter, account, limits(settings), context=call_context(settings, telemetry),
                            on_wait=telemetry.waited, token_prefix=slot_prefix(session.id, os.getpid())) if limited else None  # fmt: skip
        pause = [pause_on_429(limiter, account, max_pause=settings.rate.max_pause)] if limited else []
        client = klicktipp_client(
            settings, auth_from_env(env), gate=gate, observer=observers(*pause, telemetry.call)
        )
        locks = RedisLocks(store, prefix, session=session.id)
        credential = credential_id(env)
        reference = ReferenceData(
            client, RedisReferenceCache(store, prefix), locks, ttl=settings.klicktipp.reference_ttl
        )
        state = RedisStateStore(store, prefix, session=session.id)
        outbound = RedisOutbound(store, prefix, settings.sync.outbound_maxlen)
        review = RedisReviewList(store, prefix)
        dead_letters = RedisDeadLetterStore(store, prefix, dead_letter_bounds(settings))
        schedule = RedisSchedule(store, prefix)
        deps = SyncDeps(client, reference, state, outbound, settings)
        erasure = eraser(settings, client, store, state=state, dead_letters=dead_letters, review=review,
                         outbound=outbound, schedule=schedule)  # fmt: skip
        sync, fetchers = ContactSync(deps, notify), fetchers_from_env(env)
        return cls(
            settings=settings,
            account=account,
            session=session,
            client=client,
            reference=reference,
            sync=sync,
            deletions=Deletions(deps, review, erasure),
            state=state,
            redis=store,
            dead_letters=dead_letters,
            stats=RedisStats(store, prefix),
            review=review,
            outbound=outbound,
            locks=locks,
            schedule=schedule,
            guards=RedisGuards(store, prefix, credential=credential),
            refresh=Refresh(deps, sync, fetchers),
            fetchers=fetchers,
            telemetry=telemetry,
            key_queues=RedisKeyQueues(store, prefix),
            credential=CredentialCheck(
                RedisCredentialHealth(store, prefix, credential), lambda: verify(client)
            ),
        )

    def finish(
        self,
        task_id: str,
        outcomes: Iterable[str],
        *,
        forget: bool = False,
        latency: tuple[Lane, float] | None = None,
    ) -> None:
        """End of a task attempt: the delivery guard, outcome counters, telemetry and (for an applied
        change) its latency since enqueue, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        RedisGuards(pipe, self.settings.key_prefix).finished(task_id)  # (its credential is not read here)
        stats = RedisStats(pipe, self.settings.key_prefix)
        for outcome in outcomes:
            stats.incr(outcome)
        if latency is not None:
            stage_latency(pipe, self.settings.key_prefix, *latency)
        self.telemetry.end(pipe, forget=forget)
        pipe.execute()

    def close(self) -> None:
        self.client.close()
        for fetcher in self.fetchers.values():
            fetcher.close()
        self.redis.close()


class RuntimeHolder:
    """One runtime per process: a forked pool child builds its own (sockets must not cross fork)."""

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
        # One session for the worker: pool children forked from it hold locks on its behalf.
        self.session = session or WorkerSession.new()
        self._lock = threading.Lock()
        self._runtime: WorkerRuntime | None = None
        self._pid = 0

    def get(self) -> WorkerRuntime:
        if self._runtime is None or self._pid != os.getpid():
            with self._lock:
                if self._runtime is None or self._pid != os.getpid():
                    self._runtime = WorkerRuntime.build(
                        self._settings, self._env, self._notify, session=self.session
                    )
                    self._pid = os.getpid()
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None and self._pid == os.getpid():
            self._runtime.close()
        self._runtime = None
