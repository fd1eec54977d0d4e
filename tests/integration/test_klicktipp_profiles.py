"""The flows that matter, against both answers of the fake KlickTipp: ``documented`` (its OpenAPI spec)
and ``recorded`` (what KlickTipp's public connectors record the live API answering, KLICKTIPP_API.md
§11: no tag maps in subscriber answers, ``{"error": 7}`` for an unknown tag, ``["Error 4"]`` for an
unsubscribed address, raw-text 404 search misses, empty 404 bodies).

Real Celery worker (threads, concurrency 4), real Redis, real HTTP to the fake. Assertions are about
outcomes and KlickTipp's final state, which must not depend on the profile; call counts are checked
where the profile decides them.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from celery import Celery

from fake_klicktipp.testing import (
    CRM_CONTACT_ID_FIELD,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    LIFECYCLE_LEAD_TAG_ID,
    SMART_TAG_ID,
    UNSUBSCRIBED_EMAIL,
    FakeControl,
    RunningFake,
    partner_headers,
)
from ktsync.producers import Producer
from tests.integration.sync_helpers import (
    LIFECYCLE,
    LIST,
    T0,
    Outcomes,
    Stores,
    calls_of,
    contacts_with,
    deleted,
    manual_tag_names,
    sync_first,
    tag_id,
    the_contact,
    upsert,
)

pytestmark = pytest.mark.integration

PROFILES = ("documented", "recorded")


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest, fake: FakeControl) -> str:
    """Run the test once per profile of the fake (reset to the documented one after each test)."""
    name: str = request.param
    fake.use_profile(name)  # type: ignore[arg-type]
    return name


def api(fake_server: RunningFake, method: str, path: str, **body: Any) -> None:
    """A KlickTipp user's own change, through the API (partner headers)."""
    answer = requests.request(
        method, f"{fake_server.base_url}{path}", json=body or None, headers=partner_headers(), timeout=5
    )
    answer.raise_for_status()


def test_a_new_contact_gets_fields_and_tags(
    profile: str, worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    producer.enqueue(
        upsert("701", "nina@shop.example", firstname="Nina", lifecyclestage="lead", lists=["News"])
    )
    counts = outcomes.wait(1)

    assert (counts["synced"], counts["dead_lettered"], counts["retried"]) == (1, 0, 0)
    record = the_contact(fake, "nina@shop.example")
    assert record["fields"]["fieldFirstName"] == "Nina"
    assert record["fields"][CRM_CONTACT_ID_FIELD] == "701"
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("lead"), LIST.format("News")}
    assert stores.state.get("hubspot", "701").klicktipp_id == str(record["id"])


def test_the_first_sync_of_an_existing_contact_removes_its_outdated_owned_tags(
    profile: str, worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer,
    outcomes: Outcomes,
) -> None:  # fmt: skip
    # Given a contact KlickTipp has with an owned tag that no longer applies (ktsync never saw it)
    api(fake_server, "POST", "/subscriber/tag", email=EXISTING_EMAIL, tagids=[LIFECYCLE_LEAD_TAG_ID])

    # When the CRM sends it for the first time, as a customer
    producer.enqueue(upsert("crm-0001", EXISTING_EMAIL, firstname="Erika", lifecyclestage="customer"))
    assert outcomes.wait(1)["synced"] == 1

    # Then the outdated tag is gone — also where KlickTipp's answers list no tags at all — and the
    # foreign tag and SmartTag stay
    record = the_contact(fake, EXISTING_EMAIL)
    assert manual_tag_names(fake, record) == {"Webinar 2026", LIFECYCLE.format("customer")}
    assert set(record["smart_tags"]) == {str(SMART_TAG_ID)}
    untagged = [str(c["body"]["tagid"]) for c in calls_of(fake, "api.subscriber.untag")]
    assert untagged == [str(LIFECYCLE_LEAD_TAG_ID)]
    # And only the recorded answers (no tag maps) made ktsync read the contact and confirm tags
    reads = calls_of(fake, "api.subscriber.retrieve") + calls_of(fake, "api.subscriber.tagged")
    assert bool(reads) is (profile == "recorded")


def test_an_update_goes_by_id_and_a_segment_change_swaps_the_owned_tag(
    profile: str, worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    sync_first(
        producer, outcomes, fake, upsert("702", "olga@shop.example", firstname="Olga", lifecyclestage="lead")
    )
    olga = the_contact(fake, "olga@shop.example")

    producer.enqueue(
        upsert("702", "olga@shop.example", at=T0 + 60, firstname="Olga B.", lifecyclestage="customer")
    )
    assert outcomes.wait(2)["synced"] == 2

    record = the_contact(fake, "olga@shop.example")
    assert record["id"] == olga["id"]
    assert record["fields"]["fieldFirstName"] == "Olga B."
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("customer")}
    assert [c["path"] for c in calls_of(fake, "api.subscriber.update")] == [f"/subscriber/{olga['id']}"]
    assert calls_of(fake, "api.subscriber.create") == []


def test_an_email_change_updates_the_same_contact(
    profile: str, worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    sync_first(producer, outcomes, fake, upsert("703", "paul@shop.example", lifecyclestage="lead"))
    paul = the_contact(fake, "paul@shop.example")

    producer.enqueue(upsert("703", "paul@new.example", at=T0 + 60, lifecyclestage="customer"))
    assert outcomes.wait(2)["synced"] == 2

    assert contacts_with(fake, email="paul@shop.example") == []
    record = the_contact(fake, "paul@new.example")
    assert record["id"] == paul["id"]
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("customer")}


def test_an_unsubscribed_contact_stays_unsubscribed_and_is_updated_by_id(
    profile: str, worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # When the CRM sends data for an address that unsubscribed (recorded: KlickTipp says ["Error 4"])
    producer.enqueue(upsert("704", UNSUBSCRIBED_EMAIL, firstname="Gustavo"))
    counts = outcomes.wait(1)

    # Then: outcome "unsubscribed", no dead letter, the contact updated by id and still unsubscribed
    assert (counts["unsubscribed"], counts["dead_lettered"], counts["retried"]) == (1, 0, 0)
    record = the_contact(fake, UNSUBSCRIBED_EMAIL)
    assert record["status"] == "unsubscribed"
    assert record["fields"]["fieldFirstName"] == "Gustavo"
    assert fake.state()["doi_emails"] == []
    [synced] = stores.outbound_of("contact.synced")
    assert synced["subscription"] == "unsubscribed"


def test_a_tag_deleted_in_klicktipp_is_created_again_once_for_all_and_nothing_is_dead_lettered(
    profile: str, worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer,
    outcomes: Outcomes, stores: Stores,
) -> None:  # fmt: skip
    # Given a segment tag ktsync created and cached, on a synced contact, and seven contacts synced
    # as leads; then a KlickTipp user deletes the tag
    sync_first(producer, outcomes, fake, upsert("705", "tara@shop.example", lifecyclestage="vip"))
    for n in range(7):
        producer.enqueue(upsert(f"71{n}", f"vip{n}@shop.example", lifecyclestage="lead"))
    assert outcomes.wait(8)["synced"] == 8
    old_id = tag_id(fake, LIFECYCLE.format("vip"))
    api(fake_server, "DELETE", f"/tag/{old_id}")
    fake.clear_requests()

    # When the seven become VIPs at once (four worker threads; the worker's cached tags still name
    # the deleted tag), and a new VIP arrives
    for n in range(7):
        producer.enqueue(upsert(f"71{n}", f"vip{n}@shop.example", at=T0 + 60, lifecyclestage="vip"))
    producer.enqueue(upsert("720", "newvip@shop.example", lifecyclestage="vip"))
    counts = outcomes.wait(16)

    # Then KlickTipp's refusal of the tag call (documented 403, recorded error 7) made ktsync re-read
    # the tags and create the tag exactly once; every contact carries it; no dead letter
    assert (counts["synced"], counts["dead_lettered"]) == (16, 0), counts
    assert stores.dead_letters.count() == 0
    refused = [c for c in calls_of(fake, "api.subscriber.tag") if c["status"] != 200]
    assert refused, "no tag call was refused: the deletion went unnoticed"
    assert {c["status"] for c in refused} == {406}
    assert len(calls_of(fake, "api.tag.create")) == 1
    new_id = tag_id(fake, LIFECYCLE.format("vip"))
    assert new_id != old_id
    for email in ["newvip@shop.example", *(f"vip{n}@shop.example" for n in range(7))]:
        assert manual_tag_names(fake, the_contact(fake, email)) == {LIFECYCLE.format("vip")}, email

    # And the contact that lost the tag with its deletion gets it back with its next event, even an
    # unchanged one
    producer.enqueue(upsert("705", "tara@shop.example", at=T0 + 60, lifecyclestage="vip"))
    assert outcomes.wait(17)["synced"] == 17
    assert manual_tag_names(fake, the_contact(fake, "tara@shop.example")) == {LIFECYCLE.format("vip")}
    assert len(calls_of(fake, "api.tag.create")) == 1


@pytest.mark.parametrize(
    "source_config",
    [{"fields": {"firstname": "fieldFirstName", "score": {"field": "field100002", "type": "number"}}}],
    ids=["score-mapped"],
)
def test_a_mapped_field_deleted_in_klicktipp_is_a_config_dead_letter_naming_it_with_an_alarm(
    profile: str, worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer,
    outcomes: Outcomes, stores: Stores, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Given a synced contact, and then the mapped field "Lead Score" deleted in KlickTipp (the
    # worker still has the account's fields cached)
    sync_first(producer, outcomes, fake, upsert("706", "uma@shop.example", firstname="Uma", score=3))
    api(fake_server, "DELETE", "/field/100002")
    caplog.set_level(logging.ERROR, logger="ktsync.alarm")

    # When the next change arrives
    task_id = producer.enqueue(upsert("706", "uma@shop.example", at=T0 + 60, firstname="Uma", score=4))
    counts = outcomes.wait(2)

    # Then it is dead-lettered as "config", naming the mapping entry and the field, once, no retries
    assert (counts["dead_lettered"], counts["retried"]) == (1, 0), counts
    letter = stores.dead_letters.get(task_id)
    assert letter is not None
    assert letter.reason == "config"
    assert "fields.score" in letter.error["message"]
    assert "field100002" in letter.error["message"]
    # And the operator is alarmed
    alarms = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALARM")]
    assert len(alarms) == 1, alarms
    assert "fields.score" in alarms[0]


def test_a_crm_deletion_removes_the_owned_tags_even_of_a_contact_ktsync_never_synced(
    profile: str, worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer,
    outcomes: Outcomes,
) -> None:  # fmt: skip
    # Given a KlickTipp contact with an owned tag, unknown to ktsync's state
    api(fake_server, "POST", "/subscriber/tag", email=EXISTING_EMAIL, tagids=[LIFECYCLE_LEAD_TAG_ID])

    # When the CRM deletes it (the default policy: untag)
    producer.enqueue(deleted("crm-0001", EXISTING_EMAIL, at=T0))
    assert outcomes.wait(1)["deleted_untag"] == 1

    # Then the owned tag is removed, the foreign tag and the SmartTag stay, the contact too
    record = the_contact(fake, EXISTING_EMAIL)
    assert record["id"] == EXISTING_CONTACT_ID
    assert manual_tag_names(fake, record) == {"Webinar 2026"}
    assert set(record["smart_tags"]) == {str(SMART_TAG_ID)}


@pytest.mark.parametrize("source_config", [{"deletion_policy": "delete"}], ids=["delete"])
def test_the_delete_policy_for_an_address_klicktipp_does_not_know_is_done_without_retries(
    profile: str, worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    # When the CRM deletes a contact KlickTipp never had (recorded: the search miss is raw text)
    producer.enqueue(deleted("707", "nobody@shop.example", at=T0))
    counts = outcomes.wait(1)

    # Then the search says "not found" and there is nothing to delete: no retry, no dead letter
    assert (counts["deleted_delete"], counts["retried"], counts["dead_lettered"]) == (1, 0, 0), counts
    assert [c["status"] for c in calls_of(fake, "api.subscriber.search")] == [404]
    assert calls_of(fake, "api.subscriber.delete") == []


def test_a_crm_deletion_after_an_owned_tag_was_deleted_in_klicktipp_removes_the_rest(
    profile: str, worker: Celery, fake: FakeControl, fake_server: RunningFake, producer: Producer,
    outcomes: Outcomes, stores: Stores,
) -> None:  # fmt: skip
    # Given a contact synced with two owned tags, one of which a KlickTipp user then deletes (the
    # worker's cached tags still name it)
    sync_first(
        producer, outcomes, fake, upsert("708", "vera@shop.example", lifecyclestage="lead", lists=["News"])
    )
    api(fake_server, "DELETE", f"/tag/{tag_id(fake, LIST.format('News'))}")

    # When the CRM deletes the contact (the default policy: untag)
    producer.enqueue(deleted("708", "vera@shop.example", at=T0 + 60))
    counts = outcomes.wait(2)

    # Then the remaining owned tag is removed and the deleted one counts as gone: no dead letter
    assert (counts["deleted_untag"], counts["dead_lettered"]) == (1, 0), counts
    assert stores.dead_letters.count() == 0
    assert manual_tag_names(fake, the_contact(fake, "vera@shop.example")) == set()
