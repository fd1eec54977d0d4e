"""The receiver over real HTTP (uvicorn on loopback), with a real Redis and the real Producer.

Assertions read what is really in the broker: the queue's list in Redis, decoded like a worker would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import requests

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import RedisHandle, free_port
from ktsync.queues import queue_status
from tests.webhooks.helpers import (
    KLICKTIPP_TOKEN,
    close_body,
    close_headers,
    dumps,
    generic_headers,
    hubspot_event,
    hubspot_headers,
    queued,
    serving,
    settings_for,
    webhook_settings,
    zoho_body,
)


@pytest.fixture
def settings(redis_handle: RedisHandle, namespace: str, redis_client: redis.Redis) -> Settings:
    return settings_for(redis_handle, namespace)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serving(settings) as url:
        yield url


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback: no proxies
        yield session


def pending(client: redis.Redis, settings: Settings) -> int:
    """What `ktsync status --json` reports as pending (the same function)."""
    return queue_status(
        client, settings.worker.lane_queue(Lane.LIVE), time.time(), settings.broker_prefix
    ).pending


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_hubspot_batch_lands_in_the_queue_once(
    base_url: str, http: requests.Session, redis_client: redis.Redis, settings: Settings, namespace: str
) -> None:
    # Given a signed HubSpot batch, sent to a URL with escapes HubSpot decodes before signing
    events = [
        hubspot_event(101, "contact.creation", 501, at_ms=now_ms()),
        hubspot_event(102, "contact.propertyChange", 501, at_ms=now_ms() + 1, propertyName="email"),
        hubspot_event(103, "contact.merge", None, at_ms=now_ms(), primaryObjectId=600, mergedObjectIds=[601]),
        hubspot_event(104, "company.creation", 7, at_ms=now_ms()),
    ]
    body = dumps(events)
    query = "portal=62515%3Aeu&tag=a%2Cb%26c"
    signed_uri = f"{base_url}/webhooks/hubspot?portal=62515:eu&tag=a,b%26c"
    headers = hubspot_headers(signed_uri, body, at=time.time())
    # When it is delivered, and then delivered again (HubSpot retries)
    first = http.post(f"{base_url}/webhooks/hubspot?{query}", data=body, headers=headers, timeout=10)
    replay = http.post(f"{base_url}/webhooks/hubspot?{query}", data=body, headers=headers, timeout=10)
    # Then the first is enqueued (collapsed per contact), the replay is not
    assert (first.status_code, first.json()) == (
        200,
        {"status": "accepted", "received": 4, "enqueued": 3, "duplicates": 0, "ignored": 1},
    )
    assert (replay.status_code, replay.json()["enqueued"], replay.json()["duplicates"]) == (200, 0, 3)
    tasks = queued(redis_client, settings)
    assert [(name, m["type"], m["crm_contact_id"], m.get("event_id")) for name, m in tasks] == [
        ("ktsync.fetch_and_sync", "crm.contact_changed", "501", "102"),
        ("ktsync.fetch_and_sync", "crm.contact_changed", "600", "103:600"),
        ("ktsync.delete_contact", "contact.deleted", "601", "103:601"),
    ]
    assert all(m["source"] == "hubspot" and m["v"] == 1 for _, m in tasks)
    assert pending(redis_client, settings) == 3
    assert redis_client.get(f"{namespace}:webhook:hubspot:101") == b"done"


def test_close_zoho_generic_and_klicktipp_land_in_the_queue(
    base_url: str, http: requests.Session, redis_client: redis.Redis, settings: Settings
) -> None:
    now = time.time()
    close = dumps(close_body("updated", date_updated=None, date_created=None))
    zoho = dumps(zoho_body("delete", ids=["4150868000000624001"]))
    generic = dumps({"v": 1, "type": "contact.upsert", "source": "shop", "crm_contact_id": "s-1",
                     "email": "sam@shop.example", "occurred_at": 1795341600, "event_id": "order-9"})  # fmt: skip
    kt_form = {"email": "kim@shop.example", "klicktipp_id": "1000001", "Authorization": KLICKTIPP_TOKEN}
    kt_json = {"email": "lee@shop.example", "Authorization": KLICKTIPP_TOKEN}
    answers = [
        http.post(f"{base_url}/webhooks/close", data=close, headers=close_headers(close, at=now), timeout=10),
        http.post(
            f"{base_url}/webhooks/zoho", data=zoho, headers={"content-type": "application/json"}, timeout=10
        ),
        http.post(
            f"{base_url}/webhooks/generic", data=generic, headers=generic_headers(generic, at=now), timeout=10
        ),
        http.post(f"{base_url}/webhooks/klicktipp", data=kt_form, timeout=10),
        http.post(f"{base_url}/webhooks/klicktipp/deletion", json=kt_json, timeout=10),
        http.get(f"{base_url}/webhooks/klicktipp/deletion", params=kt_form, timeout=10),
    ]
    assert [(a.status_code, a.json()["enqueued"]) for a in answers] == [(200, 1)] * 6
    summary = [
        (name, m.get("source"), m.get("crm_contact_id") or m.get("email"))
        for name, m in queued(redis_client, settings)
    ]
    assert summary == [
        ("ktsync.fetch_and_sync", "close", "cont_1"),
        ("ktsync.delete_contact", "zoho", "4150868000000624001"),
        ("ktsync.sync_contact", "shop", "s-1"),
        ("ktsync.refresh_from_klicktipp", "klicktipp", "kim@shop.example"),
        ("ktsync.handle_deletion_request", "klicktipp", "lee@shop.example"),
        ("ktsync.handle_deletion_request", "klicktipp", "kim@shop.example"),
    ]
    close_message = queued(redis_client, settings)[0][1]
    assert abs(close_message["occurred_at"] - now) < 5  # no date in the event: receipt time


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/webhooks/hubspot", b"[]", {"x-hubspot-signature-v3": "AAAA", "x-hubspot-request-timestamp": "1"}, 401),
        ("/webhooks/close", b"{}", {}, 401),
        ("/webhooks/zoho", dumps(zoho_body(token="guess")), {}, 401),
        ("/webhooks/generic", b"{}", {"x-ktsync-signature": "sha256=" + "0" * 64, "x-ktsync-timestamp": "1"}, 401),
        ("/webhooks/klicktipp", b"email=a%40b.example&Authorization=guess", {"content-type": "application/x-www-form-urlencoded"}, 401),
        ("/webhooks/zoho", b"<xml/>", {}, 400),
        ("/webhooks/klicktipp", b'{"email": ["a@b.example"], "Authorization": "' + KLICKTIPP_TOKEN.encode() + b'"}', {"content-type": "application/json"}, 400),
    ],
)  # fmt: skip
def test_refused_requests_enqueue_nothing(
    base_url: str, http: requests.Session, redis_client: redis.Redis, settings: Settings,
    path: str, body: bytes, headers: dict[str, str], status: int,
) -> None:  # fmt: skip
    answer = http.post(f"{base_url}{path}", data=body, headers=headers, timeout=10)
    assert answer.status_code == status
    assert pending(redis_client, settings) == 0


def test_stale_and_forged_hubspot_requests_are_401(base_url: str, http: requests.Session) -> None:
    body = dumps([hubspot_event(1, at_ms=now_ms())])
    uri = f"{base_url}/webhooks/hubspot"
    stale = hubspot_headers(uri, body, at=time.time() - 301)
    forged = hubspot_headers(uri, body, at=time.time(), secret="guessed")
    for headers in (stale, forged):
        answer = http.post(uri, data=body, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()) == (401, {"error": "signature invalid or stale"})


def test_a_generic_batch_with_one_bad_message_is_400_with_every_rejection(
    base_url: str, http: requests.Session, redis_client: redis.Redis, settings: Settings
) -> None:
    good = {"v": 1, "type": "crm.contact_changed", "source": "shop", "crm_contact_id": "1", "occurred_at": 1}
    body = dumps([good, {**good, "occurred_at": "yesterday", "colour": "red"}])
    answer = http.post(
        f"{base_url}/webhooks/generic", data=body, headers=generic_headers(body, at=time.time()), timeout=10
    )
    assert answer.status_code == 400
    assert [(p["index"], p["field"]) for p in answer.json()["problems"]] == [
        (1, "colour"),
        (1, "occurred_at"),
    ]
    assert pending(redis_client, settings) == 0


def test_health_unknown_paths_methods_and_oversized_bodies(base_url: str, http: requests.Session) -> None:
    assert (
        http.get(f"{base_url}/healthz", timeout=5).status_code,
        http.post(f"{base_url}/healthz", timeout=5).status_code,
    ) == (200, 405)
    assert http.post(f"{base_url}/webhooks/pipedrive", timeout=5).status_code == 404
    answer = http.get(f"{base_url}/webhooks/hubspot", timeout=5)
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")
    assert (
        http.post(f"{base_url}/webhooks/generic", data=b"x" * (2 * 1024 * 1024 + 1), timeout=10).status_code
        == 413
    )


@pytest.fixture
def dead_redis_url() -> str:
    """A Redis URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize(
    "send",
    [
        pytest.param("hubspot", id="dedupe-store-unreachable"),
        pytest.param("klicktipp", id="broker-unreachable"),
    ],
)
def test_redis_unreachable_answers_503_so_the_sender_retries(
    dead_redis_url: str, namespace: str, http: requests.Session, send: str
) -> None:
    with serving(webhook_settings(dead_redis_url, namespace, owned=True)) as url:
        if send == "hubspot":
            body = dumps([hubspot_event(1, at_ms=now_ms())])
            answer = http.post(
                f"{url}/webhooks/hubspot",
                data=body,
                headers=hubspot_headers(f"{url}/webhooks/hubspot", body, at=time.time()),
                timeout=30,
            )
        else:
            answer = http.post(
                f"{url}/webhooks/klicktipp",
                data={"email": "a@b.example", "Authorization": KLICKTIPP_TOKEN},
                timeout=30,
            )
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "10")
    assert answer.json() == {"error": "queue unavailable, retry later"}


def test_an_answer_comes_only_after_the_messages_are_in_the_broker(
    base_url: str, http: requests.Session, redis_client: redis.Redis, settings: Settings
) -> None:
    # Given many sequential deliveries, Then each is readable in Redis the moment its 200 arrives
    for i in range(20):
        answer = http.post(
            f"{base_url}/webhooks/klicktipp",
            data={"email": f"p{i}@shop.example", "Authorization": KLICKTIPP_TOKEN},
            timeout=10,
        )
        assert answer.status_code == 200
        assert pending(redis_client, settings) == i + 1
