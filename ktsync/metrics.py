"""`ktsync metrics`: a Prometheus exporter that reads what every worker records in Redis, per scrape.

One exporter covers all workers on all hosts, since they share Redis. prometheus-client's threaded
server: scrapes make blocking Redis calls, which would stall an asyncio loop.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
import redis

from ktsync.config.settings import Settings
from ktsync.core.tenants import DEFAULT_TENANT, tenant_prefix
from ktsync.metrics_tenants import Buckets, Reading, Value, combine, per_tenant
from ktsync.redis_errors import describe_redis_error

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    from ktsync.queues import QueueStatus

log = logging.getLogger(__name__)

USERNAME_ENV = "KLICKTIPP_USERNAME"  # the limiter's keys are per (hashed) KlickTipp user name
NO_ACCOUNT = f"{USERNAME_ENV} is not set: the limiter shown is not your account's"
AUTH_ALARM = "auth_alarm"  # a counter in {p}:stats that is no task outcome
METRICS_READY_LINE = "ktsync metrics listening on http://{host}:{port}/metrics"


# Every metric the exporter serves, with its HELP text (the public contract of `ktsync metrics`).
# Labels carry only slugs, operation names, status codes and queue names: never personal data.
METRICS: dict[str, str] = {
    "ktsync_up": "1 when this scrape could read Redis, 0 when it could not.",
    "ktsync_outcomes": "Task outcomes recorded by all workers: synced, unchanged, stale, duplicate, "
    "unsubscribed, dead_lettered, retried, parked, ...",
    "ktsync_auth_alarms": "Times KlickTipp refused the credentials (an ALARM in the log; fix KLICKTIPP_*).",
    "ktsync_auth_breaker_open": "1 while KlickTipp refuses some worker's credentials (those workers take no "
    "tasks; fix their KLICKTIPP_*).",
    "ktsync_klicktipp_calls": "KlickTipp API calls by operation and HTTP status (none: no answer).",
    "ktsync_klicktipp_rate_limited": "KlickTipp answers 429 (each pauses the account for every worker).",
    "ktsync_limiter_waits": "KlickTipp calls that waited for the shared budget.",
    "ktsync_limiter_wait_seconds": "Seconds KlickTipp calls waited for the shared budget, in total.",
    "ktsync_limiter_throttled": "Tasks requeued because the wait for the budget would have been long.",
    "ktsync_limiter_tokens": "Requests the account may send at once right now (refills to the burst).",
    "ktsync_limiter_paused_seconds": "Seconds left of the account's pause after a 429 (0: not paused).",
    "ktsync_limiter_in_flight": "KlickTipp calls in flight for the account (leases not yet released).",
    "ktsync_dead_letters": "Dead letters waiting, by reason and KlickTipp error code (none: no code).",
    "ktsync_dead_letters_evicted": "Dead letters pushed out by deadletter.max_entries or max_age_days.",
    "ktsync_queue_pending": "Messages waiting in the broker queue (every priority level).",
    "ktsync_queue_in_flight": "Messages delivered to a worker, not yet acknowledged (running, prefetched).",
    "ktsync_queue_scheduled": "Retries a worker holds until their countdown (ETA) passes.",
    "ktsync_queue_oldest_pending_age_seconds": "Age of the oldest pending message: its ktsync_enqueued_at "
    "header, or else at least the time since ktsync first saw it waiting (exact to the workers' 2 s sampling); "
    "0 when the queue is empty.",
    "ktsync_stranded_messages": "Messages on a list no worker reads: a consumed queue's unprefixed name while "
    "redis.broker_prefix is set (a producer without the prefix; ktsync status names the fix).",
    "ktsync_schedule_parked": "Retries parked in Redis until due (delays above retry.max_broker_countdown).",
    "ktsync_schedule_overdue": "Parked retries past due, not yet moved back (no mover running if it stays).",
    "ktsync_lane_pending": "Messages waiting in a lane's queue (live is always taken first).",
    "ktsync_lane_oldest_pending_age_seconds": "Age of the oldest message waiting in a lane's queue; 0 when "
    "empty.",
    "ktsync_lane_in_flight": "A lane's messages delivered to a worker, not yet acknowledged.",
    "ktsync_lane_deferred": "A lane's tasks waiting for the KlickTipp budget in ktsync's key queues (not in "
    "worker slots).",
    "ktsync_lane_klicktipp_calls": "KlickTipp calls made for each lane's tasks (rate() over both: each "
    "lane's share of the budget).",
    "ktsync_sync_latency_seconds": "Seconds from a message's first enqueue to its change being applied, per "
    "lane.",
    "ktsync_reclaimed": "Tasks put back at the head of their queue because their worker died (or their ack was "
    "lost), instead of waiting for the visibility timeout.",
    "ktsync_recovery_released": "Locks and limiter slots of dead workers given back before their lease.",
    "ktsync_dead_workers": "Workers found dead (heartbeat stopped) by another worker.",
    "ktsync_workers_alive": "Workers whose heartbeat is current.",
}


def _counter(name: str, value: float | None = None, labels: list[str] | None = None) -> CounterMetricFamily:
    from prometheus_client.core import CounterMetricFamily  # imported late: keeps `ktsync --help` fast

    return CounterMetricFamily(name, METRICS[name], value=value, labels=labels)


def _gauge(name: str, value: float | None = None, labels: list[str] | None = None) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, METRICS[name], value=value, labels=labels)


def _one(name: str, kind: str, value: float, *, summed: bool = True) -> Reading:
    return Reading(name, kind, (), {(): value}, summed)


def _family(reading: Reading) -> Metric:
    """The Prometheus family of a (tenant-labelled or summed) reading."""
    from prometheus_client.core import HistogramMetricFamily

    labels = list(reading.labels)
    if reading.kind == "histogram":
        histogram = HistogramMetricFamily(reading.name, METRICS[reading.name], labels=labels)
        for key, value in reading.samples.items():
            assert isinstance(value, Buckets)
            histogram.add_metric(list(key), list(value.buckets), sum_value=value.sum)
        return histogram
    family = (_counter if reading.kind == "counter" else _gauge)(reading.name, labels=labels)
    for key, number in reading.samples.items():
        assert not isinstance(number, Buckets)
        family.add_metric(list(key), number)
    return family


@dataclass(frozen=True)
class Scope:
    """One tenant as a scrape reads it: its key prefix, its account (None: its user name cannot be read
    here, so no limiter gauges) and its budget."""

    tenant: str
    prefix: str
    account: str | None
    settings: Settings


class RedisCollector:
    """A Prometheus collector that reads Redis on every scrape: one exporter covers every worker and
    every tenant (see :mod:`ktsync.metrics_tenants`)."""

    def __init__(
        self, client: redis.Redis, settings: Settings, account: str, *, env: Mapping[str, str] | None = None
    ) -> None:
        self._redis, self._settings, self._account = client, settings, account
        self._env = dict(env or {})
        self._labelled = per_tenant(self._env)
        self._p = settings.deployment_prefix  # the keys every tenant shares
        self._dlq_cache: dict[str, tuple[Any, Counter[tuple[str, int | None]]]] = {}
        self._tenant_settings: dict[str, tuple[str, Settings]] = {}

    def collect(self) -> Iterator[Metric]:
        try:
            now = time.time()
            queues = self._queue_statuses(now)
            tenants = [(scope.tenant, self._tenant_readings(scope)) for scope in self._scopes()]
            readings = combine(tenants, labelled=self._labelled)
            families = [*(_family(r) for r in readings), *self._queues(now, queues), *self._lanes(queues),
                        *self._recovery()]  # fmt: skip
        except redis.RedisError as exc:
            log.warning("metrics: cannot read Redis (%s)", exc)
            yield _gauge("ktsync_up", 0)
            return
        yield from families
        yield _gauge("ktsync_up", 1)

    def _scopes(self) -> list[Scope]:
        """The default tenant and every other the deployment knows, disabled ones too (their dead letters
        and counters stay until cleaned up)."""
        from ktsync.config.settings import ConfigError, tenant_settings
        from ktsync.config.tenants import fingerprint
        from ktsync.tenant_ops import USERNAME, spec_username
        from ktsync.tenant_scope import current_view
        from ktsync.worker.runtime import account_key

        scopes = [Scope(DEFAULT_TENANT, self._settings.key_prefix, self._account, self._settings)]
        for name, spec in sorted(current_view(self._settings, self._redis).specs.items()):
            version = fingerprint(spec)
            cached = self._tenant_settings.get(name)
            if cached is None or cached[0] != version:
                try:  # built once per change of the tenant, not per scrape
                    own = tenant_settings(self._settings, spec, self._env)
                except ConfigError as exc:
                    log.warning("metrics: tenant %s: %s; its budget is read with the deployment's", name, exc)
                    own = self._settings
                cached = self._tenant_settings[name] = (version, own)
            username = spec_username(spec, self._env)
            account = None if username is None else account_key({USERNAME: username})
            scopes.append(Scope(name, tenant_prefix(self._p, name), account, cached[1]))
        return scopes

    def _tenant_readings(self, scope: Scope) -> list[Reading]:
        return [*self._outcomes(scope.prefix), *self._calls(scope.prefix), *self._limiter(scope),
                *self._dead_letters(scope), *self._lane_calls(scope.prefix)]  # fmt: skip

    def _outcomes(self, prefix: str) -> list[Reading]:
        from ktsync.worker.credentials import refused_credentials
        from ktsync.worker.stats import RedisStats

        stats = RedisStats(self._redis, prefix).snapshot()
        outcomes: dict[tuple[str, ...], Value] = {
            (name,): float(count) for name, count in sorted(stats.items()) if name != AUTH_ALARM
        }
        breaker = bool(refused_credentials(self._redis, prefix))
        return [
            Reading("ktsync_outcomes", "counter", ("outcome",), outcomes),
            _one("ktsync_auth_alarms", "counter", stats.get(AUTH_ALARM, 0)),
            _one("ktsync_auth_breaker_open", "gauge", int(breaker)),
        ]

    def _calls(self, prefix: str) -> list[Reading]:
        from ktsync.worker.telemetry import read_calls

        calls = read_calls(self._redis, prefix)
        samples: dict[tuple[str, ...], Value] = {
            (operation, status): float(count) for (operation, status), count in sorted(calls.items())
        }
        limited = sum(count for (_op, status), count in calls.items() if status == "429")
        return [
            Reading("ktsync_klicktipp_calls", "counter", ("operation", "status"), samples),
            _one("ktsync_klicktipp_rate_limited", "counter", limited),
        ]

    def _limiter(self, scope: Scope) -> list[Reading]:
        from ktsync.queues import limiter_status
        from ktsync.worker.ratelimit.base import with_margin
        from ktsync.worker.telemetry import read_limiter

        waits = read_limiter(self._redis, scope.prefix)
        readings = [
            _one("ktsync_limiter_waits", "counter", waits.get("waits", 0)),
            _one("ktsync_limiter_wait_seconds", "counter", waits.get("wait_seconds", 0)),
            _one("ktsync_limiter_throttled", "counter", waits.get("throttled", 0)),
        ]
        if scope.account is None:
            return readings
        rate = scope.settings.rate  # the limiter's buckets are the deployment's, one per KlickTipp account
        state = limiter_status(self._redis, self._p, scope.account, limits=with_margin(rate.per_second, rate.burst, rate.max_in_flight, rate.bulk_share))  # fmt: skip
        return [
            *readings,
            _one("ktsync_limiter_tokens", "gauge", state.tokens, summed=False),
            _one("ktsync_limiter_paused_seconds", "gauge", state.paused_for, summed=False),
            _one("ktsync_limiter_in_flight", "gauge", state.in_flight, summed=False),
        ]

    def _dead_letters(self, scope: Scope) -> list[Reading]:
        from ktsync.queues import dead_letter_counts

        prefix = scope.prefix
        index, evicted_key = f"{prefix}:dlq:index", f"{prefix}:dlq:evicted"
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zrevrange(index, 0, 0, withscores=True)
        pipe.get(evicted_key)
        size, newest, evicted = pipe.execute()
        fingerprint = (size, newest, evicted)
        seen, counts = self._dlq_cache.get(scope.tenant, (None, Counter()))
        if fingerprint != seen:  # read the entries again only when a letter came, went or was evicted
            counts = dead_letter_counts(self._redis, prefix)
            self._dlq_cache[scope.tenant] = (fingerprint, counts)
        samples: dict[tuple[str, ...], Value] = {
            (reason, "none" if code is None else str(code)): float(count)
            for (reason, code), count in sorted(
                counts.items(), key=lambda item: (item[0][0], item[0][1] or 0)
            )
        }
        return [
            Reading("ktsync_dead_letters", "gauge", ("reason", "code"), samples),
            _one("ktsync_dead_letters_evicted", "counter", int(evicted or 0)),
        ]

    def _lane_calls(self, prefix: str) -> list[Reading]:
        from ktsync.worker.lanemetrics import read_lane_calls, read_latency

        calls: dict[tuple[str, ...], Value] = {
            (lane.value,): float(count) for lane, count in read_lane_calls(self._redis, prefix).items()
        }
        latency: dict[tuple[str, ...], Value] = {
            (lane.value,): Buckets(tuple((b, float(n)) for b, n in histogram.buckets), histogram.sum)
            for lane, histogram in read_latency(self._redis, prefix).items()
        }
        return [
            Reading("ktsync_lane_klicktipp_calls", "counter", ("lane",), calls),
            Reading("ktsync_sync_latency_seconds", "histogram", ("lane",), latency),
        ]

    def _queue_statuses(self, now: float) -> list[QueueStatus]:
        """Every routed queue, read once per scrape for both the queue and the lane families."""
        from ktsync.queues import queue_statuses, routed_queues

        queues = routed_queues(self._settings)
        return queue_statuses(self._redis, queues, now, self._settings.broker_prefix, key_prefix=self._p)

    def _queues(self, now: float, queues: list[QueueStatus]) -> list[Metric]:
        from ktsync.core.stranded import stranded_unprefixed
        from ktsync.queues import parked_status

        parked = parked_status(self._redis, self._p, now)
        stranded = _gauge("ktsync_stranded_messages", labels=["queue"])
        consumed = [queue.queue for queue in queues]
        for entry in stranded_unprefixed(self._redis, consumed, self._settings.broker_prefix):
            stranded.add_metric([entry.key], entry.count)
        gauges = {
            field: _gauge(f"ktsync_queue_{field}", labels=["queue"])
            for field in ("pending", "in_flight", "scheduled")
        }
        age = _gauge("ktsync_queue_oldest_pending_age_seconds", labels=["queue"])
        for queue in queues:
            for field, family in gauges.items():
                family.add_metric([queue.queue], getattr(queue, field))
            if queue.oldest_pending_age is not None:  # unknown (a backlog too deep to look through)
                age.add_metric([queue.queue], queue.oldest_pending_age)
        return [
            *gauges.values(),
            age,
            stranded,
            _gauge("ktsync_schedule_parked", parked.count),
            _gauge("ktsync_schedule_overdue", parked.overdue),
        ]

    def _lanes(self, queues: list[QueueStatus]) -> list[Metric]:
        """The lanes' queues and key queues: every tenant's (the per-tenant calls and latency are read
        with the tenant's families)."""
        from ktsync.core.broker import deferred_by_lane
        from ktsync.queues import lane_report

        lanes = lane_report(self._settings, queues, deferred_by_lane(self._redis, self._p), {})
        gauges = {
            name: _gauge(f"ktsync_lane_{name}", labels=["lane"])
            for name in ("pending", "in_flight", "deferred")
        }
        age = _gauge("ktsync_lane_oldest_pending_age_seconds", labels=["lane"])
        for lane, report in lanes.items():
            for name, family in gauges.items():
                family.add_metric([lane], report[name])
            if report["oldest_pending_age"] is not None:
                age.add_metric([lane], report["oldest_pending_age"])
        return [*gauges.values(), age]

    def _recovery(self) -> list[Metric]:
        from ktsync.worker.recovery import live_sessions, read_recovery

        counts = read_recovery(self._redis, self._p)
        released = _counter("ktsync_recovery_released", labels=["what"])
        released.add_metric(["locks"], counts["released_locks"])
        released.add_metric(["slots"], counts["released_slots"])
        return [
            _counter("ktsync_reclaimed", counts["reclaimed_tasks"]),
            released,
            _counter("ktsync_dead_workers", counts["dead_workers"]),
            _gauge("ktsync_workers_alive", len(live_sessions(self._redis, self._p))),
        ]


def serve_metrics(
    settings: Settings, *, host: str, port: int, env: Mapping[str, str], ready: Callable[[str], None]
) -> None:
    """Serve ``/metrics`` until SIGTERM or Ctrl-C (prometheus-client's threaded WSGI server)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from ktsync.worker.runtime import account_key

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:  # a wrong URL or DB index fails at the start; Redis going away later is ktsync_up 0
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise click.ClickException(describe_redis_error(settings.redis_url, exc)) from None
    if not env.get(USERNAME_ENV, "").strip():
        log.warning("%s; ktsync_limiter_* describe an unused bucket", NO_ACCOUNT)
    try:
        per_tenant(env)
    except ValueError as exc:
        client.close()
        raise click.ClickException(str(exc)) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client, settings, account_key(env), env=env))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        client.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    line = METRICS_READY_LINE.format(host=host, port=server.server_port)
    log.info(line)
    ready(line)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        client.close()
