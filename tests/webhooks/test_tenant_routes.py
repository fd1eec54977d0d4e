"""Webhooks per tenant: ``/webhooks/{tenant}/{crm}`` with the tenant's own secrets and dedupe keys.

The receiver with the tenant registry's twin first (statuses, secrets, messages), then over real
HTTP with a real Redis, the registry in it and the real Producer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
import requests

from ktsync.config.registry import MemoryTenantRegistry, RedisTenantRegistry, WatchedTenants
from ktsync.config.settings import Settings
from ktsync.core.dedupe import MemoryDeduper
from ktsync.core.redis_server import RedisHandle
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.producers.webhooks.receiver import Receiver
from ktsync.producers.webhooks.routes import resolve
from ktsync.producers.webhooks.tenants import Hooks, RegistryHooks
from tests.webhooks.helpers import (
    GENERIC_SECRET,
    HUBSPOT_SECRET,
    NOW,
    SECRETS,
    dumps,
    generic_headers,
    hubspot_event,
    hubspot_headers,
    queued,
    serving,
    settings_for,
)
from tests.webhooks.test_receiver import HOST, RecordingEnqueuer, request

ACME_HUBSPOT_SECRET = "acme-hubspot-secret-4711"
ACME_GENERIC_SECRET = "acme-generic-secret-0815"
ENV = {  # the process's environment: the default tenant's secrets, and the variables acme's refer to
    "HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
    "KTSYNC_WEBHOOK_SECRET": GENERIC_SECRET,
    "ACME_KLICKTIPP_PASSWORD": "acme-password",
    "ACME_HUBSPOT_SECRET": ACME_HUBSPOT_SECRET,
    "ACME_GENERIC_SECRET": ACME_GENERIC_SECRET,
}
ACME = {
    "credentials": {
        "KLICKTIPP_USERNAME": "acme-shop",
        "KLICKTIPP_PASSWORD": {"env": "ACME_KLICKTIPP_PASSWORD"},
        "HUBSPOT_CLIENT_SECRET": {"env": "ACME_HUBSPOT_SECRET"},
        "KTSYNC_WEBHOOK_SECRET": {"env": "ACME_GENERIC_SECRET"},
    }
}
T_MS = int(NOW * 1000)


def acme_hubspot(
    events: list[dict[str, Any]], *, secret: str = ACME_HUBSPOT_SECRET, tenant: str = "acme"
) -> Any:
    body = dumps(events)
    path = f"/webhooks/{tenant}/hubspot"
    return request(path, body, hubspot_headers(f"https://{HOST}{path}", body, at=NOW, secret=secret))


@pytest.fixture
def registry() -> MemoryTenantRegistry:
    registry = MemoryTenantRegistry()
    registry.put("acme", ACME)
    return registry


@pytest.fixture
def dedupers() -> dict[str, MemoryDeduper]:
    return {}


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def receiver(
    registry: MemoryTenantRegistry, dedupers: dict[str, MemoryDeduper], enqueuer: RecordingEnqueuer
) -> Receiver:
    default = Hooks(DEFAULT_TENANT, SECRETS, dedupers.setdefault(DEFAULT_TENANT, MemoryDeduper(ttl=3600)))
    hooks = RegistryHooks(
        default,
        WatchedTenants({}, registry, interval=0),
        env=ENV,
        deduper_for=lambda tenant: dedupers.setdefault(tenant, MemoryDeduper(ttl=3600)),
    )
    return Receiver(
        secrets=SECRETS, enqueuer=enqueuer, deduper=default.deduper, clock=lambda: NOW, tenants=hooks
    )


def test_paths_name_their_tenant_and_todays_paths_are_the_default_tenants() -> None:
    assert [(found[0], found[1].vendor) if (found := resolve(p)) else None for p in (
        "/webhooks/hubspot", "/webhooks/klicktipp/deletion", "/webhooks/acme/hubspot",
        "/webhooks/acme/klicktipp/deletion", "/webhooks/Acme/hubspot", "/webhooks/acme/nothing",
        "/webhooks/acme/hubspot/extra",
    )] == [
        ("default", "hubspot"), ("default", "klicktipp"), ("acme", "hubspot"), ("acme", "klicktipp"),
        None, None, None,
    ]  # fmt: skip


def test_a_request_signed_with_the_tenants_secret_enqueues_messages_for_the_tenant(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    # Given acme's HubSpot secret signs acme's URL, When HubSpot delivers there
    response = receiver.handle(acme_hubspot([hubspot_event(1, "contact.creation", 501, at_ms=T_MS)]))
    # Then the message is acme's
    assert (response.status, response.body["enqueued"]) == (200, 1)
    assert [(m["crm_contact_id"], m["tenant"]) for m in enqueuer.messages] == [("501", "acme")]


def test_the_tenants_route_refuses_the_default_tenants_secret(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    response = receiver.handle(acme_hubspot([hubspot_event(1, at_ms=T_MS)], secret=HUBSPOT_SECRET))
    assert (response.status, dict(response.body)) == (401, {"error": "signature invalid or stale"})
    assert enqueuer.messages == []


def test_the_default_route_refuses_the_tenants_secret_and_is_unchanged(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    body = dumps([hubspot_event(1, "contact.creation", 501, at_ms=T_MS)])
    uri = f"https://{HOST}/webhooks/hubspot"
    forged = receiver.handle(
        request("/webhooks/hubspot", body, hubspot_headers(uri, body, at=NOW, secret=ACME_HUBSPOT_SECRET))
    )
    good = receiver.handle(request("/webhooks/hubspot", body, hubspot_headers(uri, body, at=NOW)))
    assert (forged.status, good.status) == (401, 200)
    assert [dict(m) for m in enqueuer.messages] == [
        {
            "v": 1,
            "type": "crm.contact_changed",
            "source": "hubspot",
            "crm_contact_id": "501",
            "occurred_at": T_MS,
            "event_id": "1",
        }
    ]  # fmt: skip  (no tenant field: the default tenant's messages are as before)


def test_a_signature_over_another_tenants_url_is_refused(
    receiver: Receiver, registry: MemoryTenantRegistry
) -> None:
    # Given a second tenant with the same HubSpot secret, a request signed for acme's URL sent to beta's
    registry.put("beta", ACME)
    body = dumps([hubspot_event(1, at_ms=T_MS)])
    signed_for_acme = hubspot_headers(
        f"https://{HOST}/webhooks/acme/hubspot", body, at=NOW, secret=ACME_HUBSPOT_SECRET
    )
    response = receiver.handle(request("/webhooks/beta/hubspot", body, signed_for_acme))
    # Then the tenant's URL is part of what is signed
    assert response.status == 401


@pytest.mark.parametrize(
    ("tenant", "why"),
    [
        ("ghost", "unknown tenant 'ghost'"),
        ("acme", "tenant 'acme' is disabled"),
    ],
)
def test_an_unknown_or_disabled_tenant_is_404_with_the_reason_and_no_secret(
    receiver: Receiver, registry: MemoryTenantRegistry, enqueuer: RecordingEnqueuer, tenant: str, why: str
) -> None:
    registry.set_disabled("acme", True)
    response = receiver.handle(acme_hubspot([hubspot_event(1, at_ms=T_MS)], tenant=tenant))
    assert response.status == 404
    assert response.body["error"] == "not found"
    assert why in response.body["reason"]
    text = json.dumps(response.body)
    assert ACME_HUBSPOT_SECRET not in text
    assert "Traceback" not in text
    assert enqueuer.messages == []


def test_a_vendor_the_tenant_has_no_secret_for_is_404(receiver: Receiver) -> None:
    # acme has no Close key of its own, and the default tenant's is not inherited
    response = receiver.handle(request("/webhooks/acme/close", b"{}", {}))
    assert (response.status, dict(response.body)) == (404, {"error": "not found"})


def test_a_tenants_event_ids_are_deduplicated_apart_from_other_tenants(
    receiver: Receiver, enqueuer: RecordingEnqueuer, dedupers: dict[str, MemoryDeduper]
) -> None:
    # Given the default tenant's HubSpot event 1 was delivered
    body = dumps([hubspot_event(1, "contact.creation", 501, at_ms=T_MS)])
    default = receiver.handle(
        request("/webhooks/hubspot", body, hubspot_headers(f"https://{HOST}/webhooks/hubspot", body, at=NOW))
    )
    # When acme's portal delivers its own event 1, twice
    first = receiver.handle(acme_hubspot([hubspot_event(1, "contact.creation", 501, at_ms=T_MS)]))
    again = receiver.handle(acme_hubspot([hubspot_event(1, "contact.creation", 501, at_ms=T_MS)]))
    # Then acme's is not the default's duplicate, but its own replay is
    assert [r.body["enqueued"] for r in (default, first, again)] == [1, 1, 0]
    assert set(dedupers) == {"default", "acme"}


def test_a_generic_message_naming_another_tenant_is_refused(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    message = {"v": 1, "type": "contact.upsert", "source": "shop", "crm_contact_id": "7",
               "email": "a@shop.example", "occurred_at": NOW, "tenant": "default"}  # fmt: skip
    body = dumps([message])
    on_acme = receiver.handle(
        request("/webhooks/acme/generic", body, generic_headers(body, at=NOW, secret=ACME_GENERIC_SECRET))
    )
    cross = dumps([{**message, "tenant": "acme"}])
    on_default = receiver.handle(request("/webhooks/generic", cross, generic_headers(cross, at=NOW)))
    assert (on_acme.status, on_default.status) == (400, 400)
    assert [p["field"] for r in (on_acme, on_default) for p in r.body["problems"]] == ["tenant", "tenant"]
    assert enqueuer.messages == []


# --- over HTTP, with Redis ----------------------------------------------------------------------


@pytest.fixture
def settings(redis_handle: RedisHandle, namespace: str, redis_client: redis.Redis) -> Settings:
    return settings_for(redis_handle, namespace)


@pytest.fixture
def base_url(settings: Settings, redis_client: redis.Redis) -> Iterator[str]:
    RedisTenantRegistry(redis_client, settings.deployment_prefix).put("acme", ACME)
    with serving(settings, SECRETS, ENV) as url:
        yield url


def post(url: str, body: bytes, headers: Mapping[str, str]) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.post(url, data=body, headers=dict(headers), timeout=10)


def test_over_http_acmes_webhook_lands_in_the_queue_as_acmes_with_acmes_dedupe_keys(
    base_url: str, redis_client: redis.Redis, settings: Settings, namespace: str
) -> None:
    # Given acme in the registry, When HubSpot posts a batch signed with acme's secret to acme's URL
    body = dumps([hubspot_event(101, "contact.creation", 501, at_ms=int(time.time() * 1000))])
    url = f"{base_url}/webhooks/acme/hubspot"
    response = post(url, body, hubspot_headers(url, body, at=time.time(), secret=ACME_HUBSPOT_SECRET))
    unknown = post(f"{base_url}/webhooks/ghost/hubspot", body, hubspot_headers(url, body, at=time.time()))
    # Then it is in the broker as acme's, its event id remembered under acme's keys; ghost is 404
    assert (response.status_code, response.json()["enqueued"]) == (200, 1)
    assert [(m["crm_contact_id"], m.get("tenant")) for _, m in queued(redis_client, settings)] == [
        ("501", "acme")
    ]
    assert redis_client.get(f"{namespace}@acme:webhook:hubspot:101") == b"done"
    assert redis_client.get(f"{namespace}:webhook:hubspot:101") is None
    assert unknown.status_code == 404
    assert "unknown tenant 'ghost'" in unknown.json()["reason"]
