"""The receiver with an in-memory deduper and a recording enqueuer: statuses, replays, failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from ktsync.core.dedupe import MemoryDeduper
from ktsync.producers.enqueue import EnqueueError
from ktsync.producers.webhooks.receiver import Receiver
from ktsync.producers.webhooks.routes import Request
from ktsync.producers.webhooks.secrets import WebhookSecrets
from tests.webhooks.helpers import (
    CLOSE_KEY_HEX,
    GENERIC_SECRET,
    HUBSPOT_SECRET,
    KLICKTIPP_TOKEN,
    NOW,
    SECRETS,
    close_body,
    close_headers,
    dumps,
    generic_headers,
    hubspot_event,
    hubspot_headers,
    zoho_body,
)

HOST = "hooks.shop.example"
HUBSPOT_URI = f"https://{HOST}/webhooks/hubspot"
T_MS = int(NOW * 1000)


class RecordingEnqueuer:
    def __init__(self) -> None:
        self.batches: list[list[Mapping[str, Any]]] = []
        self.fail = False

    def enqueue_many(self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False) -> list[str]:
        assert validated, "the receiver validates every message itself"
        if self.fail:
            raise EnqueueError("could not enqueue: the broker is unreachable")
        batch = list(messages)
        self.batches.append(batch)
        return [f"task-{i}" for i in range(len(batch))]

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        return [m for batch in self.batches for m in batch]


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def deduper() -> MemoryDeduper:
    return MemoryDeduper(ttl=3600)


@pytest.fixture
def receiver(enqueuer: RecordingEnqueuer, deduper: MemoryDeduper) -> Receiver:
    return Receiver(secrets=SECRETS, enqueuer=enqueuer, deduper=deduper, clock=lambda: NOW)


def request(path: str, body: bytes = b"", headers: Mapping[str, str] | None = None, **kw: Any) -> Request:
    defaults: dict[str, Any] = {
        "method": "POST",
        "raw_path": path,
        "query": "",
        "scheme": "https",
        "host": HOST,
    }
    return Request(path=path, body=body, headers=dict(headers or {}), **{**defaults, **kw})


def hubspot_request(events: list[dict[str, Any]], **kw: Any) -> Request:
    body = dumps(events)
    return request("/webhooks/hubspot", body, hubspot_headers(HUBSPOT_URI, body, at=NOW), **kw)


def test_a_signed_hubspot_batch_is_enqueued_collapsed(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    response = receiver.handle(
        hubspot_request(
            [
                hubspot_event(1, "contact.creation", 501, at_ms=T_MS),
                hubspot_event(2, "contact.propertyChange", 501, at_ms=T_MS + 5),
                hubspot_event(3, "company.creation", 9, at_ms=T_MS),
                hubspot_event(4, "contact.deletion", 502, at_ms=T_MS),
            ]
        )
    )
    assert (response.status, dict(response.body)) == (
        200,
        {"status": "accepted", "received": 4, "enqueued": 2, "duplicates": 0, "ignored": 1},
    )
    assert [(m["type"], m["crm_contact_id"], m["event_id"]) for m in enqueuer.messages] == [
        ("crm.contact_changed", "501", "2"),
        ("contact.deleted", "502", "4"),
    ]
    assert len(enqueuer.batches) == 1  # one pipelined enqueue per request


def test_a_replayed_hubspot_event_is_enqueued_once(receiver: Receiver, enqueuer: RecordingEnqueuer) -> None:
    first = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS)]))
    replay = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS, attemptNumber=1)]))
    mixed = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS), hubspot_event(2, at_ms=T_MS)]))
    assert [r.status for r in (first, replay, mixed)] == [200, 200, 200]
    assert (replay.body["enqueued"], replay.body["duplicates"]) == (0, 1)
    assert (mixed.body["enqueued"], mixed.body["duplicates"]) == (1, 1)
    assert [m["event_id"] for m in enqueuer.messages] == ["1", "2"]


def test_the_same_event_twice_in_one_batch_counts_once(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    response = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS), hubspot_event(1, at_ms=T_MS)]))
    assert (response.body["enqueued"], response.body["duplicates"]) == (1, 1)


def test_an_enqueue_failure_answers_503_and_the_retry_is_not_a_duplicate(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    # Given Redis is down, When HubSpot delivers, Then 503 (HubSpot retries) and nothing is remembered
    enqueuer.fail = True
    down = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS)]))
    assert (down.status, dict(down.headers)) == (503, {"retry-after": "10"})
    enqueuer.fail = False
    retry = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS)]))
    assert (retry.status, retry.body["enqueued"]) == (200, 1)


def test_an_event_another_request_is_delivering_answers_503(
    receiver: Receiver, deduper: MemoryDeduper
) -> None:
    deduper.claim("hubspot", ["1"])  # a concurrent request, still enqueueing
    response = receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS), hubspot_event(2, at_ms=T_MS)]))
    assert response.status == 503
    assert deduper.claim("hubspot", ["2"]).claimed == ("2",)  # its other claims were released


@pytest.mark.parametrize(
    ("req", "status"),
    [
        (request("/webhooks/hubspot", b"[]", {}), 401),
        (request("/webhooks/hubspot", b"[]", hubspot_headers(HUBSPOT_URI, b"[]", at=NOW - 400)), 401),
        (
            request(
                "/webhooks/hubspot", b"[]", hubspot_headers(HUBSPOT_URI, b"[]", at=NOW), host="other.example"
            ),
            401,
        ),
        (request("/webhooks/hubspot", b"{}", hubspot_headers(HUBSPOT_URI, b"{}", at=NOW)), 400),
        (request("/webhooks/hubspot", b"[", hubspot_headers(HUBSPOT_URI, b"[", at=NOW)), 400),
        (request("/webhooks/close", b"{}", close_headers(b"{}", at=NOW, key_hex="11" * 32)), 401),
        (request("/webhooks/close", b"{}", close_headers(b"{}", at=NOW)), 400),
        (request("/webhooks/zoho", dumps(zoho_body(token="wrong"))), 401),
        (request("/webhooks/zoho", dumps(zoho_body(channel_id="1"))), 401),
        (request("/webhooks/zoho", dumps({k: v for k, v in zoho_body().items() if k != "token"})), 401),
        (request("/webhooks/zoho", b"not json"), 400),
        (request("/webhooks/generic", b"{}", generic_headers(b"{}", at=NOW, secret="x")), 401),
        (request("/webhooks/klicktipp", b"email=a%40b.example&Authorization=wrong"), 401),
        (request("/webhooks/klicktipp", b"email=a%40b.example"), 401),
        (request("/webhooks/klicktipp/deletion", b"Authorization=" + KLICKTIPP_TOKEN.encode()), 400),
        (request("/webhooks/nothing"), 404),
        (request("/webhooks/hubspot", method="GET"), 405),
        (request("/webhooks/hubspot", method="PUT"), 405),
    ],
)
def test_statuses(receiver: Receiver, enqueuer: RecordingEnqueuer, req: Request, status: int) -> None:
    response = receiver.handle(req)
    assert response.status == status
    assert enqueuer.messages == []
    if status == 401:
        assert dict(response.body) == {"error": "signature invalid or stale"}


def test_405_says_which_methods_are_allowed(receiver: Receiver) -> None:
    assert dict(receiver.handle(request("/webhooks/klicktipp", method="DELETE")).headers) == {
        "allow": "GET, POST"
    }


def test_a_vendor_without_credentials_has_no_route(
    enqueuer: RecordingEnqueuer, deduper: MemoryDeduper
) -> None:
    only_hubspot = WebhookSecrets(hubspot_client_secret=HUBSPOT_SECRET)
    receiver = Receiver(secrets=only_hubspot, enqueuer=enqueuer, deduper=deduper, clock=lambda: NOW)
    assert receiver.handle(request("/webhooks/close", b"{}", close_headers(b"{}", at=NOW))).status == 404
    assert receiver.handle(hubspot_request([hubspot_event(1, at_ms=T_MS)])).status == 200


def test_hubspot_behind_a_proxy_verifies_against_the_public_url(
    enqueuer: RecordingEnqueuer, deduper: MemoryDeduper
) -> None:
    # Given HubSpot calls https://hooks.shop.example/kt/webhooks/hubspot and a proxy forwards to us
    secrets = replace(SECRETS, public_url="https://hooks.shop.example/kt")
    receiver = Receiver(secrets=secrets, enqueuer=enqueuer, deduper=deduper, clock=lambda: NOW)
    body = dumps([hubspot_event(1, at_ms=T_MS)])
    public = "https://hooks.shop.example/kt/webhooks/hubspot?portal=1%3A2"
    signed = "https://hooks.shop.example/kt/webhooks/hubspot?portal=1:2"
    req = request(
        "/webhooks/hubspot",
        body,
        hubspot_headers(signed, body, at=NOW),
        query="portal=1%3A2",
        host="10.0.0.5:8780",
        scheme="http",
    )
    assert receiver.handle(req).status == 200
    local = request(
        "/webhooks/hubspot",
        body,
        hubspot_headers(
            public.replace("https://hooks.shop.example/kt", "http://10.0.0.5:8780"), body, at=NOW
        ),
        host="10.0.0.5:8780",
    )
    assert receiver.handle(local).status == 401


def test_close_contact_and_ignored_lead(receiver: Receiver, enqueuer: RecordingEnqueuer) -> None:
    contact = dumps(close_body("deleted"))
    lead = dumps(close_body("updated", "lead", id="ev_2"))
    ok = receiver.handle(request("/webhooks/close", contact, close_headers(contact, at=NOW)))
    ignored = receiver.handle(request("/webhooks/close", lead, close_headers(lead, at=NOW)))
    assert (ok.status, ok.body["enqueued"]) == (200, 1)
    assert (ignored.status, ignored.body["status"], ignored.body["note"]) == (
        200,
        "ignored",
        "object_type 'lead' is not handled",
    )
    assert [(m["type"], m["crm_contact_id"]) for m in enqueuer.messages] == [("contact.deleted", "cont_1")]


def test_zoho_duplicate_bodies_are_enqueued_once(receiver: Receiver, enqueuer: RecordingEnqueuer) -> None:
    body = dumps(zoho_body("edit", ids=["41", "42"]))
    responses = [receiver.handle(request("/webhooks/zoho", body)) for _ in range(2)]
    assert [(r.status, r.body["enqueued"]) for r in responses] == [(200, 2), (200, 0)]


def test_generic_rejections_list_every_problem_and_enqueue_nothing(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    good = {"v": 1, "type": "crm.contact_changed", "source": "shop", "crm_contact_id": "7", "occurred_at": 1}
    body = dumps([good, {**good, "crm_contact_id": ""}, {**good, "type": "contact.merged"}])
    response = receiver.handle(request("/webhooks/generic", body, generic_headers(body, at=NOW)))
    assert response.status == 400
    assert response.body["problems"] == [
        {"index": 1, "field": "crm_contact_id", "reason": "must be 1 to 128 characters"},
        {"index": 2, "field": "type", "reason": response.body["problems"][1]["reason"]},
    ]
    assert enqueuer.messages == []


def test_generic_messages_are_enqueued_as_sent_and_deduplicated_on_event_id(
    receiver: Receiver, enqueuer: RecordingEnqueuer
) -> None:
    message = {"v": 1, "type": "contact.upsert", "source": "shop", "crm_contact_id": "7", "email": "a@b.example",
               "properties": {"firstname": "Alex"}, "occurred_at": "2026-11-22T10:00:00Z", "event_id": "e-1"}  # fmt: skip
    body = dumps(message)
    for _ in range(2):
        receiver.handle(request("/webhooks/generic", body, generic_headers(body, at=NOW)))
    assert enqueuer.messages == [message]


def test_klicktipp_get_with_query_parameters(receiver: Receiver, enqueuer: RecordingEnqueuer) -> None:
    query = f"email=alex%40shop.example&klicktipp_id=123&Authorization={KLICKTIPP_TOKEN}"
    response = receiver.handle(request("/webhooks/klicktipp/deletion", method="GET", query=query))
    assert response.status == 200
    assert [(m["type"], m["email"], m["klicktipp_id"], m["occurred_at"]) for m in enqueuer.messages] == [
        ("klicktipp.deletion_requested", "alex@shop.example", "123", NOW)
    ]


def test_an_unexpected_error_answers_500_without_the_payload_in_the_log(
    receiver: Receiver, enqueuer: RecordingEnqueuer, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(messages: Iterable[Mapping[str, Any]], *, validated: bool = False) -> list[str]:
        raise RuntimeError("boom")

    enqueuer.enqueue_many = explode  # type: ignore[method-assign]
    body = dumps({"email": "secret-person@shop.example", "Authorization": KLICKTIPP_TOKEN})
    req = request("/webhooks/klicktipp", body, {"content-type": "application/json"})
    with caplog.at_level(logging.INFO):
        assert receiver.handle(req).status == 500
    assert "webhook klicktipp: unexpected error, answered 500" in caplog.text
    assert "secret-person" not in caplog.text


def test_logs_carry_counts_never_secrets_signatures_or_personal_data(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    email = "alex.private@shop.example"
    kt = f"email={email}&Authorization={KLICKTIPP_TOKEN}".encode()
    bad_kt = f"email={email}&Authorization=guess".encode()
    hub = dumps([hubspot_event(1, at_ms=T_MS, propertyName="email", propertyValue=email)])
    hub_headers = hubspot_headers(HUBSPOT_URI, hub, at=NOW)
    with caplog.at_level(logging.DEBUG):
        receiver.handle(request("/webhooks/klicktipp", kt))
        receiver.handle(request("/webhooks/klicktipp", bad_kt))
        receiver.handle(request("/webhooks/hubspot", hub, hub_headers))
        receiver.handle(request("/webhooks/generic", b"[{}]", generic_headers(b"[{}]", at=NOW)))
    text = caplog.text + json.dumps([r.args for r in caplog.records], default=str)
    for secret in (email, KLICKTIPP_TOKEN, "guess", hub_headers["x-hubspot-signature-v3"], HUBSPOT_SECRET,
                   GENERIC_SECRET, CLOSE_KEY_HEX):  # fmt: skip
        assert secret not in text
    assert "webhook klicktipp: 1 events, 1 enqueued" in caplog.text
    assert "webhook klicktipp: refused, signature mismatch" in caplog.text
