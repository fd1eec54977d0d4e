"""`ktsync metrics`: a running exporter, scraped over real HTTP, shows what workers recorded in Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.metrics import METRICS, RedisCollector
from tests.ops.conftest import Service
from tests.ops.seed import CRM_ID, EMAIL, seed

pytestmark = pytest.mark.slow  # the exporter as a subprocess, and connection timeouts against a dead Redis

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample by its labels; a per-tenant family's carries tenant="default" too (ktsync.metrics_tenants)."""
    key = (name, frozenset(labels.items()))
    return (
        samples[key]
        if key in samples
        else samples[(name, frozenset({**labels, "tenant": "default"}.items()))]
    )


def scrape(service: Callable[..., Service], *args: str) -> tuple[str, Service]:
    exporter = service("metrics", "--port", "0", *args)
    port = exporter.wait_for(r"listening on http://127\.0\.0\.1:(\d+)/metrics").group(1)
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text, exporter


def test_the_exporter_serves_what_workers_and_producers_recorded(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str], service: Callable[..., Service]
) -> None:
    # Given outcomes, calls, limiter waits, dead letters, parked retries and pending messages in Redis
    seeded = seed(redis_client, settings, env)

    # When Prometheus scrapes the exporter
    text, _ = scrape(service)
    scraped_at = time.time()
    samples = parse(text)

    # Then every counter has the value the recording classes wrote
    assert value(samples, "ktsync_up") == 1
    for outcome, count in {
        "synced": 3,
        "unchanged": 2,
        "dead_lettered": 3,
        "retried": 4,
        "parked": 2,
    }.items():
        assert value(samples, "ktsync_outcomes_total", outcome=outcome) == count
    assert ("ktsync_outcomes_total", frozenset({("outcome", "auth_alarm")})) not in samples
    assert value(samples, "ktsync_auth_alarms_total") == 1
    assert value(samples, "ktsync_auth_breaker_open") == 1
    calls = "ktsync_klicktipp_calls_total"
    assert value(samples, calls, operation="api.subscriber.update", status="200") == 2
    assert value(samples, calls, operation="api.subscriber.update", status="429") == 1
    assert value(samples, calls, operation="api.subscriber.update", status="none") == 1
    assert value(samples, calls, operation="api.tag.index", status="200") == 1
    assert value(samples, "ktsync_klicktipp_rate_limited_total") == 1
    assert value(samples, "ktsync_limiter_waits_total") == 2
    assert value(samples, "ktsync_limiter_wait_seconds_total") == pytest.approx(0.75)
    assert value(samples, "ktsync_limiter_throttled_total") == 1
    # ... the limiter's state: one call in flight, paused by a 429 (which empties the bucket)
    assert value(samples, "ktsync_limiter_tokens") == 0
    assert value(samples, "ktsync_limiter_in_flight") == 1
    assert 0 < value(samples, "ktsync_limiter_paused_seconds") <= 300
    # ... dead letters by reason and code, and the one the size bound evicted
    assert value(samples, "ktsync_dead_letters", reason="validation", code="8") == 2
    assert value(samples, "ktsync_dead_letters", reason="auth", code="none") == 1
    assert ("ktsync_dead_letters", frozenset({("reason", "mapping"), ("code", "none")})) not in samples
    assert value(samples, "ktsync_dead_letters_evicted_total") == 1
    # ... the queue (found under the broker prefix), its oldest message's age, and the parked retries
    queue = settings.worker.lane_queue(Lane.LIVE)
    assert value(samples, "ktsync_queue_pending", queue=queue) == 2
    assert value(samples, "ktsync_queue_in_flight", queue=queue) == 0
    assert value(samples, "ktsync_queue_scheduled", queue=queue) == 0
    age = value(samples, "ktsync_queue_oldest_pending_age_seconds", queue=queue)
    assert 0 <= age <= scraped_at - seeded.enqueued_before
    assert value(samples, "ktsync_schedule_parked") == 2
    assert value(samples, "ktsync_stranded_messages", queue=queue) == 0  # nothing on the unprefixed name
    assert value(samples, "ktsync_schedule_overdue") == 1
    # ... and the same per lane, with the calls each lane's tasks made and their latency
    assert value(samples, "ktsync_lane_pending", lane="live") == 2
    assert value(samples, "ktsync_lane_pending", lane="bulk") == 0
    assert value(samples, "ktsync_lane_deferred", lane="bulk") == 0
    assert 0 <= value(samples, "ktsync_lane_oldest_pending_age_seconds", lane="live") <= age + 1
    assert value(samples, "ktsync_lane_klicktipp_calls_total", lane="live") == 0
    assert value(samples, "ktsync_sync_latency_seconds_count", lane="bulk") == 0
    # ... and crash recovery (nothing to reclaim here, no worker heartbeating)
    assert value(samples, "ktsync_reclaimed_total") == 0
    assert value(samples, "ktsync_recovery_released_total", what="locks") == 0
    assert value(samples, "ktsync_workers_alive") == 0

    # And no personal data: no address, no CRM id, no account name
    for private in (
        EMAIL,
        CRM_ID,
        "p1@shop.example",
        "crm-p1",
        "dl-1@shop.example",
        env["KLICKTIPP_USERNAME"],
    ):
        assert private not in text


def test_every_metric_has_a_help_text_and_the_ktsync_prefix(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str], service: Callable[..., Service]
) -> None:
    # Given an empty namespace; When scraped (from an exporter logging JSON)
    text, exporter = scrape(service, "--log-format", "json")
    families = list(text_string_to_metric_families(text))

    # Then every family is one of the documented ones, named ktsync_*, with its HELP text
    assert {f.name for f in families} == set(METRICS)
    for family in families:
        assert family.name.startswith("ktsync_")
        assert family.documentation == METRICS[family.name]
    # And its log lines are JSON objects
    logged = [json.loads(line) for line in exporter.stderr_text().splitlines()]
    assert any(entry["message"].startswith("ktsync metrics listening on") for entry in logged)
    # And an empty queue has age 0, so an alert on the age never fires on an idle system
    samples = parse(generate_latest(_registry(redis_client, settings)).decode())
    assert value(samples, "ktsync_queue_oldest_pending_age_seconds", queue=settings.worker.queue) == 0
    assert value(samples, "ktsync_lane_oldest_pending_age_seconds", lane="bulk") == 0


def test_an_unreachable_redis_is_a_metric_not_an_error(settings: Settings) -> None:
    # Given Redis is not reachable (a port nobody listens on)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)

    # When scraped, Then the scrape succeeds and says so
    samples = parse(generate_latest(_registry(dead, settings)).decode())
    assert samples == {("ktsync_up", frozenset()): 0}


def _registry(client: redis.Redis, settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RedisCollector(client, settings, "account"))
    return registry
