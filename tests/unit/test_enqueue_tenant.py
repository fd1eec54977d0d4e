"""The producer refuses messages for tenants the deployment does not serve, naming the field and why."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import yaml

from ktsync.config.registry import MemoryTenantRegistry, RedisTenantRegistry, Snapshot, WatchedTenants
from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, settings_from_dict
from ktsync.core.contract import FieldError
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import RedisHandle
from ktsync.producers import Producer
from ktsync.producers.imports import ImportReport, jsonl_messages, run_import
from ktsync.producers.tenancy import TenantRejected
from tests.webhooks.helpers import settings_for

ACME = {"credentials": {"KLICKTIPP_USERNAME": "acme-shop", "KLICKTIPP_PASSWORD": {"env": "ACME_PASSWORD"}}}


def upsert(**extra: Any) -> dict[str, Any]:
    return {"v": 1, "type": "contact.upsert", "source": "shop", "crm_contact_id": "7",
            "email": "alex@shop.example", "occurred_at": 1_795_341_600, **extra}  # fmt: skip


def settings_on(url: str = "redis://127.0.0.1:1/0", namespace: str = "ktsync") -> Settings:
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["redis"].update(url=url, key_prefix=namespace)
    document["worker"]["queue"] = namespace
    return settings_from_dict(document, {})


class CountingRegistry(MemoryTenantRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def version(self) -> int:
        self.reads += 1
        return super().version()

    def snapshot(self) -> Snapshot:
        self.reads += 1
        return super().snapshot()


@pytest.fixture
def registry() -> CountingRegistry:
    registry = CountingRegistry()
    registry.put("acme", ACME)
    registry.put("beta", ACME)
    registry.set_disabled("beta", True)
    return registry


@pytest.fixture
def producer(registry: CountingRegistry) -> Iterator[Producer]:
    # Redis at a closed port: every refusal below happens before anything is sent
    with Producer(settings_on(), tenants=WatchedTenants({}, registry, interval=60)) as producer:
        yield producer


@pytest.mark.parametrize(
    ("tenant", "why"),
    [
        ("ghost", "unknown tenant 'ghost' (`ktsync tenant list` shows the tenants)"),
        ("beta", "tenant 'beta' is disabled (`ktsync tenant enable beta`)"),
    ],
)
def test_a_message_for_an_unknown_or_disabled_tenant_is_refused_with_the_reason(
    producer: Producer, tenant: str, why: str
) -> None:
    with pytest.raises(TenantRejected) as refused:
        producer.enqueue(upsert(tenant=tenant))
    assert refused.value.errors == (FieldError("tenant", why),)
    assert refused.value.to_dict() == {"errors": [{"field": "tenant", "reason": why}]}


def test_one_refused_message_stops_the_batch_before_anything_is_sent(producer: Producer) -> None:
    with pytest.raises(TenantRejected, match="unknown tenant 'ghost'"):
        producer.enqueue_many([upsert(tenant="acme"), upsert(tenant="ghost")], validated=True)


def test_the_registry_is_read_once_for_a_bulk_import_not_per_message(
    producer: Producer, registry: CountingRegistry
) -> None:
    for _ in range(1000):
        producer.admit(upsert(tenant="acme"))
    assert registry.reads <= 2  # one version, one snapshot, then the cached view


def test_the_default_tenant_never_reads_the_registry(producer: Producer, registry: CountingRegistry) -> None:
    assert producer.admit(upsert()) == upsert()
    assert producer.admit(upsert(tenant="default")) == upsert(tenant="default")
    assert registry.reads == 0


def test_a_producer_bound_to_a_tenant_sets_it_and_refuses_another(registry: CountingRegistry) -> None:
    tenants = WatchedTenants({}, registry, interval=60)
    with Producer(settings_on(), tenant="acme", tenants=tenants) as producer:
        assert producer.admit(upsert()) == upsert(tenant="acme")
        assert producer.refusal() is None
        with pytest.raises(TenantRejected) as refused:
            producer.admit(upsert(tenant="default"))
    assert refused.value.errors == (
        FieldError("tenant", "this producer enqueues for tenant 'acme', the message names 'default'"),
    )


def test_a_producer_bound_to_a_disabled_tenant_says_why_up_front(registry: CountingRegistry) -> None:
    tenants = WatchedTenants({}, registry, interval=60)
    with Producer(settings_on(), tenant="beta", tenants=tenants) as producer:
        assert producer.refusal() == "tenant 'beta' is disabled (`ktsync tenant enable beta`)"
    with pytest.raises(TenantRejected, match="must be 1 to 64 characters"):
        Producer(settings_on(), tenant="Not A Name", tenants=tenants)


def test_an_import_rejects_each_line_for_another_tenant_and_carries_its_own(
    registry: CountingRegistry,
) -> None:
    lines = [json.dumps(upsert()), json.dumps(upsert(tenant="ghost")), json.dumps(upsert(tenant="default"))]
    sent: list[dict[str, Any]] = []

    class Recording:
        def enqueue_many(self, messages: Any, *, validated: bool = False) -> list[str]:
            sent.extend(messages)
            return ["id"] * len(sent)

    with Producer(
        settings_on(), tenant="acme", tenants=WatchedTenants({}, registry, interval=60)
    ) as producer:
        report = run_import(jsonl_messages(lines, None, "acme"), Recording(), report=ImportReport(),
                            admit=producer.admit)  # fmt: skip
    assert [m["tenant"] for m in sent] == ["acme"]
    assert (report.enqueued, report.rejected) == (1, 2)
    assert [reason for _, reason in report.first_rejections] == [
        "tenant: this producer enqueues for tenant 'acme', the message names 'ghost'",
        "tenant: this producer enqueues for tenant 'acme', the message names 'default'",
    ]


# --- with Redis: the registry as the producer reads it, the message as the worker gets it ----------


def queued_messages(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    raw = client.lrange(settings.broker_prefix + settings.worker.lane_queue(Lane.LIVE), 0, -1)
    return [json.loads(base64.b64decode(json.loads(item)["body"]))[0][0] for item in reversed(raw)]


def test_with_redis_the_registry_decides_and_the_message_carries_its_tenant(
    redis_handle: RedisHandle, redis_client: redis.Redis, namespace: str
) -> None:
    # Given acme in the registry in Redis, and ghost nowhere
    settings = settings_for(redis_handle, namespace)
    registry = RedisTenantRegistry(redis_client, settings.deployment_prefix)
    registry.put("acme", ACME)
    with Producer(settings) as producer:
        # When a message for each is enqueued
        producer.enqueue(upsert(tenant="acme"))
        with pytest.raises(TenantRejected, match="unknown tenant 'ghost'"):
            producer.enqueue(upsert(tenant="ghost"))
    # And, acme disabled, by a producer started afterwards (a running one sees it within seconds)
    registry.set_disabled("acme", True)
    with Producer(settings) as producer, pytest.raises(TenantRejected, match="is disabled"):
        producer.enqueue(upsert(tenant="acme"))
    # Then only acme's message is in the broker, as acme's
    assert [m.get("tenant") for m in queued_messages(redis_client, settings)] == ["acme"]
