"""Flow control per tenant: one tenant's large bulk backlog does not make another tenant's producer wait.

The deferred tasks are written as the worker writes them (its key queues, real Redis); the producers
are the real ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane, fairness_key
from ktsync.core.redis_server import RedisHandle
from ktsync.producers import Producer
from ktsync.producers.backlog import Backpressure, bulk_backlog
from ktsync.worker.keyqueues import RedisKeyQueues
from ktsync.worker.schedule import Parked
from tests.webhooks.helpers import settings_for

LIMIT = 20


class Waited(Exception):
    """The producer would have paused."""


def never_sleep(_: float) -> None:
    raise Waited


@pytest.fixture
def settings(redis_handle: RedisHandle, namespace: str, redis_client: redis.Redis) -> Settings:
    base = settings_for(redis_handle, namespace)
    return replace(base, bulk=replace(base.bulk, max_backlog=LIMIT))


def defer(client: redis.Redis, settings: Settings, *, account: str, tenant: str | None, count: int) -> None:
    queues = RedisKeyQueues(client, settings.deployment_prefix)
    for n in range(count):
        message: dict[str, Any] = {
            "v": 1,
            "type": "contact.upsert",
            "source": "shop",
            "crm_contact_id": str(n),
        }
        if tenant is not None:
            message["tenant"] = tenant
        entry = Parked("ktsync.sync_contact", (message,), {}, f"{account}-{n}", "bulk")
        queues.defer(fairness_key(account, Lane.BULK), entry, delay=3600, spacing=0)


def test_a_tenants_large_backlog_does_not_make_another_tenants_import_wait(
    redis_client: redis.Redis, settings: Settings
) -> None:
    # Given tenant a's import filled its account's bulk key queue far beyond the limit
    defer(redis_client, settings, account="acct-a", tenant="a", count=5 * LIMIT)
    # When tenant b's import asks for room
    b = Backpressure(redis_client, settings, tenant="b", sleep=never_sleep)
    # Then b goes on at once, and a waits for its own backlog
    assert b.wait_for_room(LIMIT // 2) == 0
    a = Backpressure(redis_client, settings, tenant="a", sleep=never_sleep)
    with pytest.raises(Waited):
        a.wait_for_room(1)
    assert a.last_backlog == 5 * LIMIT


def test_each_tenant_counts_its_own_deferred_work_and_the_shared_broker_queue(
    redis_client: redis.Redis, settings: Settings
) -> None:
    # Given deferred work of a, of the default tenant (messages naming none), and 3 bulk messages queued
    defer(redis_client, settings, account="acct-a", tenant="a", count=7)
    defer(redis_client, settings, account="acct-default", tenant=None, count=4)
    with Producer(settings, lane=Lane.BULK) as producer:
        producer.enqueue_many([{"v": 1, "type": "contact.upsert", "source": "shop", "crm_contact_id": str(n),
                                "email": f"c{n}@shop.example", "occurred_at": 0} for n in range(3)])  # fmt: skip
    # Then each counts its own deferred tasks plus the queue every tenant's messages share
    assert bulk_backlog(redis_client, settings, "a") == 7 + 3
    assert bulk_backlog(redis_client, settings) == 4 + 3  # the settings' tenant: default
    assert bulk_backlog(redis_client, settings, "b") == 3


def test_a_producer_waits_for_its_own_tenants_backlog(redis_client: redis.Redis, settings: Settings) -> None:
    defer(redis_client, settings, account="acct-a", tenant="a", count=5 * LIMIT)
    with Producer(settings, lane=Lane.BULK, tenant="b") as b:
        assert b.wait_for_room(LIMIT) == 0
    with Producer(settings, lane=Lane.BULK, tenant="a") as a:
        waits: list[int] = []

        def stop(backlog: int) -> None:
            waits.append(backlog)
            raise Waited

        with pytest.raises(Waited):
            a.wait_for_room(1, stop)
    assert waits == [5 * LIMIT]
