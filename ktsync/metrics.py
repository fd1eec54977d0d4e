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
from typing import TYPE_CHECKING, Any

import click
import redis

from ktsync.config.settings import Settings
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


class RedisCollector:
    """A Prometheus collector that reads Redis on every scrape: one exporter covers every worker."""

    def __init__(self, client: redis.Redis, settings: Settings, account: str) -> None:
        self._redis, self._settings, self._account = client, settings, account
        self._p = settings.key_prefix
        self._dlq_cache: tuple[Any, Counter[tuple[str, int | None]]] = (None, Counter())

    def collect(self) -> Iterator[Metric]:
        try:
            now = time.time()
            queues = self._queue_statuses(now)
            families = [*self._outcomes(), *self._calls(), *self._limiter(), *self._dead_letters(),
                        *self._queues(now, queues), *self._lanes(queues), *self._recovery()]  # fmt: skip
        except redis.RedisError as exc:
            log.warning("metrics: cannot read Redis (%s)", exc)
            yield _gauge("ktsync_up", 0)
            return
        yield from families
        yield _gauge("ktsync_up", 1)

    def _outcomes(self) -> list[Metric]:
        from ktsync.worker.credentials import refused_credentials
        from ktsync.worker.stats import RedisStats

        stats = RedisStats(self._redis, self._p).snapshot()
        outcomes = _counter("ktsync_outcomes", labels=["outcome"])
        for name, count in sorted(stats.items()):
            if name != AUTH_ALARM:
                outcomes.add_metric([name], count)
        breaker = bool(refused_credentials(self._redis, self._p))
        return [
            outcomes,
            _counter("ktsync_auth_alarms", stats.get(AUTH_ALARM, 0)),
            _gauge("ktsync_auth_breaker_open", int(breaker)),
        ]

    def _calls(self) -> list[Metric]:
        from ktsync.worker.telemetry import read_calls

        calls = read_calls(self._redis, self._p)
        family = _counter("ktsync_klicktipp_calls", labels=["operation", "status"])
        for (operation, status), count in sorted(calls.items()):
            family.add_metric([operation, status], count)
        limited = sum(count for (_op, status), count in calls.items() if status == "429")
        return [family, _counter("ktsync_klicktipp_rate_limited", limited)]

    def _limiter(self) -> list[Metric]:
        from ktsync.queues import limiter_status
        from ktsync.worker.ratelimit.base import with_margin
        from ktsync.worker.telemetry import read_limiter

        waits, rate = read_limiter(self._redis, self._p), self._settings.rate
        state = limiter_status(self._redis, self._p, self._account, limits=with_margin(rate.per_second, rate.burst, rate.max_in_flight, rate.bulk_share))  # fmt: skip
        return [
            _counter("ktsync_limiter_waits", waits.get("waits", 0)),
            _counter("ktsync_limiter_wait_seconds", waits.get("wait_seconds", 0)),
            _counter("ktsync_limiter_throttled", waits.get("throttled", 0)),
            _gauge("ktsync_limiter_tokens", state.tokens),
            _gauge("ktsync_limiter_paused_seconds", state.paused_for),
            _gauge("ktsync_limiter_in_flight", state.in_flight),
        ]

    def _dead_letters(self) -> list[Metric]:
        from ktsync.queues import dead_letter_counts

        index, evicted_key = f"{self._p}:dlq:index", f"{self._p}:dlq:evicted"
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zrevrange(index, 0, 0, withscores=True)
        pipe.get(evicted_key)
        size, newest, evicted = pipe.execute()
        fingerprint, (seen, counts) = (size, newest, evicted), self._dlq_cache
        if fingerprint != seen:  # read the entries again only when a letter came, went or was evicted
            counts = dead_letter_counts(self._redis, self._p)
            self._dlq_cache = (fingerprint, counts)
        depth = _gauge("ktsync_dead_letters", labels=["reason", "code"])
        for (reason, code), count in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
            depth.add_metric([reason, "none" if code is None else str(code)], count)
        return [depth, _counter("ktsync_dead_letters_evicted", int(evicted or 0))]

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
        from prometheus_client.core import HistogramMetricFamily

        from ktsync.core.broker import deferred_by_lane
        from ktsync.queues import lane_report
        from ktsync.worker.lanemetrics import read_lane_calls, read_latency

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
        calls = _counter("ktsync_lane_klicktipp_calls", labels=["lane"])
        for lane_name, count in read_lane_calls(self._redis, self._p).items():
            calls.add_metric([lane_name.value], count)
        latency = HistogramMetricFamily(
            "ktsync_sync_latency_seconds", METRICS["ktsync_sync_latency_seconds"], labels=["lane"]
        )
        for lane_name, histogram in read_latency(self._redis, self._p).items():
            latency.add_metric([lane_name.value], list(histogram.buckets), sum_value=histogram.sum)
        return [*gauges.values(), age, calls, latency]

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
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client, settings, account_key(env)))
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
