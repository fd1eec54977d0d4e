"""Sync semantics, identity and tags: the CRM guide's steps 5-12 end to end on real parts.

A real Celery worker (threads, concurrency 4) consumes from the real Redis and calls the fake
KlickTipp over HTTP. Call counts come from the fake's request log; "contact calls" are the
``api.subscriber.*`` operations (no login, reference-data reads or tag creation).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from celery import Celery

from fake_klicktipp.testing import (
    CRM_CONTACT_ID_FIELD,
    DOUBLE_OPT_IN_LIST_ID,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    LIFECYCLE_LEAD_TAG_ID,
    SINGLE_OPT_IN_LIST_ID,
    SMART_TAG_ID,
    UNSUBSCRIBED_CONTACT_ID,
    UNSUBSCRIBED_EMAIL,
    WEBINAR_TAG_ID,
    FakeControl,
    RunningFake,
    partner_headers,
)
from ktsync.producers import Producer
from tests.integration.sync_helpers import (
    LIFECYCLE,
    LIST,
    SOURCE,
    T0,
    Outcomes,
    Stores,
    calls_of,
    contact_calls,
    contacts_with,
    manual_tag_names,
    sync_first,
    tag_id,
    the_contact,
    upsert,
    wait_for,
    wire,
)

pytestmark = pytest.mark.integration


def test_a_new_contact_gets_fields_tags_and_its_ids_stored_in_both_systems(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # When a contact the account does not know arrives
    producer.enqueue(
        upsert(
            "601",
            "nina@shop.example",
            firstname="Nina",
            company="Shop GmbH",
            lifecyclestage="lead",
            lists=["Newsletter"],
        )
    )
    assert outcomes.wait(1)["synced"] == 1

    # Then it exists in KlickTipp with its fields (the CRM contact ID included) and its segment tags
    record = the_contact(fake, "nina@shop.example")
    assert record["status"] == "subscribed"
    assert record["fields"] == {
        CRM_CONTACT_ID_FIELD: "601",
        "fieldFirstName": "Nina",
        "fieldCompanyName": "Shop GmbH",
    }
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("lead"), LIST.format("Newsletter")}
    # And ktsync remembers its KlickTipp ID and tells the CRM side the ID and the subscription status
    kt_id = str(record["id"])
    state = stores.state.get(SOURCE, "601")
    assert state is not None
    assert state.klicktipp_id == kt_id
    [synced] = stores.outbound_of("contact.synced")
    assert synced["klicktipp_id"] == kt_id
    assert synced["subscription"] == "subscribed"
    assert (synced["source"], synced["crm_contact_id"], synced["email"]) == (
        SOURCE,
        "601",
        "nina@shop.example",
    )


def test_a_field_change_costs_exactly_one_update_by_klicktipp_id(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    sync_first(
        producer, outcomes, fake, upsert("602", "olga@shop.example", firstname="Olga", lifecyclestage="lead")
    )
    kt_id = the_contact(fake, "olga@shop.example")["id"]

    # When only the first name changes in the CRM
    producer.enqueue(
        upsert("602", "olga@shop.example", at=T0 + 60, firstname="Olga Maria", lifecyclestage="lead")
    )
    assert outcomes.wait(2)["synced"] == 2

    # Then exactly one contact call: the update by ID, carrying the new value
    calls = contact_calls(fake)
    assert wire(calls) == [("PUT", f"/subscriber/{kt_id}")]
    assert calls[0]["body"]["fields"]["fieldFirstName"] == "Olga Maria"
    assert the_contact(fake, "olga@shop.example")["fields"]["fieldFirstName"] == "Olga Maria"


def test_an_email_change_updates_the_same_contact_by_id_and_later_tag_calls_use_the_new_address(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    sync_first(
        producer, outcomes, fake, upsert("603", "paul@old.example", firstname="Paul", lifecyclestage="lead")
    )
    kt_id = the_contact(fake, "paul@old.example")["id"]

    # When the CRM changes the address (and the lifecycle stage) of that contact
    producer.enqueue(
        upsert("603", "paul@new.example", at=T0 + 60, firstname="Paul", lifecyclestage="customer")
    )
    assert outcomes.wait(2)["synced"] == 2

    # Then the contact is updated by its KlickTipp ID with newemail: no add-or-update, no duplicate
    calls = contact_calls(fake)
    assert wire(calls)[0] == ("PUT", f"/subscriber/{kt_id}")
    assert calls[0]["body"]["newemail"] == "paul@new.example"
    assert not calls_of(fake, "api.subscriber.create")
    [record] = contacts_with(fake, crm_id="603")
    assert (record["id"], record["email"]) == (kt_id, "paul@new.example")
    assert contacts_with(fake, email="paul@old.example") == []
    # And the tag calls that follow address the contact by its new e-mail
    tag_calls = [c for c in calls[1:] if c["operation"] in ("api.subscriber.tag", "api.subscriber.untag")]
    assert [c["operation"] for c in tag_calls] == ["api.subscriber.tag", "api.subscriber.untag"]
    assert {c["body"]["email"] for c in tag_calls} == {"paul@new.example"}
    assert all(c["status"] == 200 for c in tag_calls)
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("customer")}


def test_an_email_change_to_another_contacts_address_is_dead_lettered_as_a_conflict(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    sync_first(producer, outcomes, fake, upsert("604", "quinn@shop.example", firstname="Quinn"))
    contacts_before = len(fake.state()["contacts"])

    # When the CRM changes the address to one another KlickTipp contact already has
    task_id = producer.enqueue(upsert("604", EXISTING_EMAIL, at=T0 + 60, firstname="Quinn"))
    assert outcomes.wait(2)["dead_lettered"] == 1

    # Then the task is dead-lettered as a conflict naming both addresses
    letter = stores.dead_letters.get(task_id)
    assert letter is not None
    assert letter.reason == "conflict"
    assert (letter.error["old_email"], letter.error["new_email"]) == ("quinn@shop.example", EXISTING_EMAIL)
    # And KlickTipp was only asked to change the address (refused with 507): nothing created or merged
    calls = contact_calls(fake)
    assert [(c["operation"], c["status"]) for c in calls] == [("api.subscriber.update", 406)]
    assert len(fake.state()["contacts"]) == contacts_before
    assert the_contact(fake, "quinn@shop.example")["fields"][CRM_CONTACT_ID_FIELD] == "604"
    assert the_contact(fake, EXISTING_EMAIL)["id"] == EXISTING_CONTACT_ID


def test_a_segment_change_swaps_the_owned_tag_and_leaves_foreign_tags_and_smarttags_alone(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    # Given the seeded contact (foreign tag "Webinar 2026" and a SmartTag), synced as a lead
    sync_first(
        producer, outcomes, fake, upsert("crm-0001", EXISTING_EMAIL, firstname="Erika", lifecyclestage="lead")
    )
    assert LIFECYCLE.format("lead") in manual_tag_names(fake, the_contact(fake, EXISTING_EMAIL))

    # When the lifecycle stage changes to customer
    producer.enqueue(
        upsert("crm-0001", EXISTING_EMAIL, at=T0 + 60, firstname="Erika", lifecyclestage="customer")
    )
    assert outcomes.wait(2)["synced"] == 2

    # Then the old owned tag is removed and the new one added; nothing else was touched
    record = the_contact(fake, EXISTING_EMAIL)
    assert manual_tag_names(fake, record) == {"Webinar 2026", LIFECYCLE.format("customer")}
    assert set(record["smart_tags"]) == {str(SMART_TAG_ID)}
    untagged = [str(c["body"]["tagid"]) for c in calls_of(fake, "api.subscriber.untag")]
    assert untagged == [str(LIFECYCLE_LEAD_TAG_ID)]
    assert str(WEBINAR_TAG_ID) not in untagged


def test_an_unsubscribed_contact_is_not_resubscribed_but_updated_by_id_and_reported(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # When the CRM sends new data for a contact that unsubscribed in KlickTipp
    producer.enqueue(upsert("605", UNSUBSCRIBED_EMAIL, firstname="Gustavo"))
    counts = outcomes.wait(1)

    # Then the outcome is "unsubscribed", not a failure
    assert (counts["unsubscribed"], counts["dead_lettered"], counts["retried"]) == (1, 0, 0)
    assert stores.dead_letters.count() == 0
    # And the contact stays unsubscribed, with its fields updated by ID
    record = the_contact(fake, UNSUBSCRIBED_EMAIL)
    assert record["status"] == "unsubscribed"
    assert record["fields"]["fieldFirstName"] == "Gustavo"
    assert record["fields"][CRM_CONTACT_ID_FIELD] == "605"
    assert ("PUT", f"/subscriber/{UNSUBSCRIBED_CONTACT_ID}") in wire(contact_calls(fake))
    assert fake.state()["doi_emails"] == []
    # And the CRM side learns the status
    [synced] = stores.outbound_of("contact.synced")
    assert (synced["klicktipp_id"], synced["subscription"]) == (str(UNSUBSCRIBED_CONTACT_ID), "unsubscribed")


def test_a_tag_deleted_in_klicktipp_is_created_again_after_one_refresh_of_the_cached_tags(
    worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer, outcomes: Outcomes
) -> None:
    # Given a segment tag ktsync created and cached, which a KlickTipp user then deletes
    sync_first(producer, outcomes, fake, upsert("608", "tara@shop.example", lifecyclestage="vip"))
    old_id = tag_id(fake, LIFECYCLE.format("vip"))
    requests.delete(
        f"{fake_server.base_url}/tag/{old_id}", headers=partner_headers(), timeout=5
    ).raise_for_status()
    fake.clear_requests()

    # When another contact in that segment arrives
    producer.enqueue(upsert("609", "uwe@shop.example", lifecyclestage="vip"))
    counts = outcomes.wait(2)

    # Then KlickTipp's "tag not found" makes ktsync re-read its tags and create the tag once more
    assert (counts["synced"], counts["dead_lettered"]) == (2, 0)
    assert len(calls_of(fake, "api.tag.create")) == 1
    new_id = tag_id(fake, LIFECYCLE.format("vip"))
    assert new_id != old_id
    assert manual_tag_names(fake, the_contact(fake, "uwe@shop.example")) == {LIFECYCLE.format("vip")}


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (0, [("POST", "/subscriber")]),
        (1, [("POST", "/subscriber")]),
        (5, [("POST", "/subscriber"), ("POST", "/subscriber/tag")]),
    ],
)
def test_a_new_contact_with_k_tags_costs_at_most_two_contact_calls(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    k: int,
    expected: list[tuple[str, str]],
) -> None:
    # When a new contact needs k (new) segment tags
    lists = [f"Segment {i}" for i in range(k)]
    producer.enqueue(upsert("606", "rosa@shop.example", firstname="Rosa", lists=lists))
    assert outcomes.wait(1)["synced"] == 1

    # Then add-or-update carries one tag and a single tag call adds the rest
    assert wire(contact_calls(fake)) == expected
    record = the_contact(fake, "rosa@shop.example")
    assert manual_tag_names(fake, record) == {LIST.format(name) for name in lists}


@pytest.mark.parametrize(
    ("extra_env", "listid", "status", "doi_mails"),
    [
        ({}, SINGLE_OPT_IN_LIST_ID, "subscribed", 0),
        ({"KTSYNC_LISTID": str(DOUBLE_OPT_IN_LIST_ID)}, DOUBLE_OPT_IN_LIST_ID, "pending", 3),
    ],
    ids=["configured-single-opt-in", "KTSYNC_LISTID-double-opt-in"],
)
def test_every_new_contact_goes_through_the_configured_opt_in_process_explicitly(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    listid: int,
    status: str,
    doi_mails: int,
) -> None:
    # When three new contacts are synced
    emails = [f"new{i}@shop.example" for i in range(3)]
    producer.enqueue_many([upsert(f"61{i}", email, firstname="New") for i, email in enumerate(emails)])
    assert outcomes.wait(3)["synced"] == 3

    # Then every add-or-update names the configured opt-in process: KlickTipp's default never runs
    creates = calls_of(fake, "api.subscriber.create")
    assert len(creates) == 3
    assert [c["body"].get("listid") for c in creates] == [listid] * 3
    assert {(the_contact(fake, e)["listid"], the_contact(fake, e)["status"]) for e in emails} == {
        (listid, status)
    }
    # And confirmation mails go out only for a double-opt-in process someone chose
    assert len(fake.state()["doi_emails"]) == doi_mails


class Receiver:
    """A tiny HTTP endpoint standing in for the CRM's callback URL: it keeps every JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ktsync/synced"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def source_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A test that takes the ``receiver`` gets its URL as the source's ``callback_url``."""
    if "receiver" in request.fixturenames:
        return {"callback_url": request.getfixturevalue("receiver").url}
    return {}


def test_the_callback_url_receives_the_contact_synced_result(
    receiver: Receiver,
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    # When a contact is synced for a source with a callback URL
    producer.enqueue(upsert("607", "sven@shop.example", firstname="Sven"))
    assert outcomes.wait(1)["synced"] == 1

    # Then the CRM's endpoint receives the same contact.synced JSON that the outbound stream carries
    [payload] = wait_for(lambda: receiver.received)
    [published] = stores.outbound_of("contact.synced")
    assert payload == published
    assert payload["klicktipp_id"] == str(the_contact(fake, "sven@shop.example")["id"])
    assert (payload["crm_contact_id"], payload["subscription"]) == ("607", "subscribed")
