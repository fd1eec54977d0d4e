"""Known operational state, written through the same classes the workers and producers use."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from ktsync.config.settings import Settings
from ktsync.producers import Producer
from ktsync.worker.credentials import RedisCredentialHealth, credential_id
from ktsync.worker.deadletter import Bounds, DeadLetter, RedisDeadLetterStore
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.ratelimit import Limits, RedisRateLimiter
from ktsync.worker.runtime import account_key, limits
from ktsync.worker.schedule import Parked, RedisSchedule
from ktsync.worker.stats import RedisStats
from ktsync.worker.telemetry import Telemetry

EMAIL = "alex.ops@shop.example"  # personal data: must never reach a metric
CRM_ID = "crm-ops-501"


def upsert(crm_id: str = CRM_ID, email: str = EMAIL) -> dict[str, Any]:
    return {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": crm_id, "email": email,
            "properties": {"firstname": "Alex"}, "occurred_at": 1_795_341_600}  # fmt: skip


def letter(letter_id: str, reason: str, code: int | None, failed_at: float) -> DeadLetter:
    error = {"message": "refused", **({"error": code} if code is not None else {})}
    return DeadLetter(id=letter_id, message=upsert(f"crm-{letter_id}", f"{letter_id}@shop.example"),
                      task="ktsync.sync_contact", reason=reason, error=error, attempts=1,
                      first_failed_at=failed_at, last_failed_at=failed_at, source="hubspot")  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    enqueued_before: float  # Unix time just before the two pending messages were enqueued
    account: str


def seed(client: redis.Redis, settings: Settings, env: Mapping[str, str]) -> Seeded:
    p, now = settings.key_prefix, time.time()
    stats = RedisStats(client, p)
    for outcome, count in {"synced": 3, "unchanged": 2, "dead_lettered": 3, "retried": 4, "parked": 2,
                           "auth_alarm": 1}.items():  # fmt: skip
        stats.incr(outcome, count)
    telemetry = Telemetry(client, p)
    for status in (200, 200, 429, None):
        telemetry.call(CallRecord("api.subscriber.update", "PUT", "/subscriber/9", status, 0.01, None))
    telemetry.call(CallRecord("api.tag.index", "GET", "/tag", 200, 0.01, None))
    telemetry.waited(0.5)
    telemetry.waited(0.25)
    telemetry.throttled()
    # Four letters into a store bounded at three: the oldest (mapping) is evicted and counted.
    store = RedisDeadLetterStore(client, p, Bounds(max_entries=3))
    store.add(letter("dl-old", "mapping", None, now - 300))
    store.add(letter("dl-1", "validation", 8, now - 200))
    store.add(letter("dl-2", "validation", 8, now - 100))
    store.add(letter("dl-3", "auth", None, now - 50))
    schedule = RedisSchedule(client, p)
    schedule.park(
        Parked("ktsync.sync_contact", (upsert("crm-late"),), {"failures": 1}, "t-overdue"), now - 60
    )
    schedule.park(
        Parked("ktsync.sync_contact", (upsert("crm-later"),), {"failures": 2}, "t-later"), now + 3600
    )
    account = account_key(env)
    limiter = RedisRateLimiter(client, p)
    configured = limits(settings)
    one_hour = Limits(configured.rate, configured.burst, configured.max_in_flight, lease=3600)
    assert limiter.acquire(account, one_hour, "slot-1").granted
    limiter.pause(account, 300)
    RedisCredentialHealth(client, p, credential_id(env)).refuse("api.tag.index: HTTP 401")
    before = time.time()
    with Producer(settings) as producer:
        producer.enqueue_many([upsert("crm-p1", "p1@shop.example"), upsert("crm-p2", "p2@shop.example")])
    return Seeded(enqueued_before=before, account=account)
