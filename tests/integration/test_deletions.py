"""Sync semantics, deletions both ways: CRM ``contact.deleted`` by the source's ``deletion_policy``,
KlickTipp ``klicktipp.deletion_requested`` by ``sync.klicktipp_deletion_policy``, tombstones afterwards.

Real Celery worker (threads, concurrency 4), real Redis, real HTTP to the fake KlickTipp. The source
policy is set in the config file, the KlickTipp policy through its environment variable.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery

from fake_klicktipp.testing import EXISTING_CONTACT_ID, EXISTING_EMAIL, SMART_TAG_ID, FakeControl
from ktsync.producers import Producer
from tests.integration.sync_helpers import (
    LIFECYCLE,
    LIST,
    SOURCE,
    T0,
    Outcomes,
    Stores,
    contact_calls,
    contacts_with,
    deleted,
    deletion_requested,
    manual_tag_names,
    sync_first,
    tag_id,
    the_contact,
    upsert,
    wire,
)
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration

CRM_ID = "crm-0001"  # the seeded contact: foreign tag "Webinar 2026" and a SmartTag
OWNED = {LIFECYCLE.format("customer"), LIST.format("Newsletter")}
DELETED_AT = T0 + 600


def source_policy(name: str) -> Any:
    """Run the test with ``sources.default.deletion_policy: <name>`` in the config file."""
    return pytest.mark.parametrize("source_config", [{"deletion_policy": name}], ids=[name])


def klicktipp_policy(*names: str) -> Any:
    """Run the test once per KlickTipp deletion policy, set through KTSYNC_KLICKTIPP_DELETION_POLICY."""
    return pytest.mark.parametrize(
        ("extra_env", "policy"),
        [({"KTSYNC_KLICKTIPP_DELETION_POLICY": name}, name) for name in names],
        ids=list(names),
    )


def synced_existing_contact(producer: Producer, outcomes: Outcomes, fake: FakeControl) -> None:
    """Given: the seeded contact, synced with two owned tags (the request log starts empty afterwards)."""
    event = upsert(CRM_ID, EXISTING_EMAIL, firstname="Erika", lifecyclestage="customer", lists=["Newsletter"])
    sync_first(producer, outcomes, fake, event)
    assert manual_tag_names(fake, the_contact(fake, EXISTING_EMAIL)) >= OWNED


def test_by_default_a_crm_deletion_removes_only_the_owned_tags(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    synced_existing_contact(producer, outcomes, fake)
    owned_ids = sorted(tag_id(fake, name) for name in OWNED)

    # When the contact is deleted in the CRM (no deletion_policy configured)
    producer.enqueue(deleted(CRM_ID, EXISTING_EMAIL, at=DELETED_AT))
    assert outcomes.wait(2)["deleted_untag"] == 1

    # Then exactly the owned tags are removed; subscription, foreign tag and SmartTag stay
    calls = contact_calls(fake)
    assert {c["operation"] for c in calls} == {"api.subscriber.untag"}
    assert sorted(str(c["body"]["tagid"]) for c in calls) == owned_ids
    record = the_contact(fake, EXISTING_EMAIL)
    assert record["status"] == "subscribed"
    assert manual_tag_names(fake, record) == {"Webinar 2026"}
    assert set(record["smart_tags"]) == {str(SMART_TAG_ID)}


@source_policy("unsubscribe")
def test_the_unsubscribe_policy_unsubscribes_the_contact(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    synced_existing_contact(producer, outcomes, fake)

    # When the contact is deleted in the CRM
    producer.enqueue(deleted(CRM_ID, EXISTING_EMAIL, at=DELETED_AT))
    assert outcomes.wait(2)["deleted_unsubscribe"] == 1

    # Then it is unsubscribed in KlickTipp, with one call
    assert wire(contact_calls(fake)) == [("POST", "/subscriber/unsubscribe")]
    assert the_contact(fake, EXISTING_EMAIL)["status"] == "unsubscribed"


@source_policy("delete")
def test_the_delete_policy_deletes_the_contact(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    synced_existing_contact(producer, outcomes, fake)

    # When the contact is deleted in the CRM
    producer.enqueue(deleted(CRM_ID, EXISTING_EMAIL, at=DELETED_AT))
    assert outcomes.wait(2)["deleted_delete"] == 1

    # Then it is deleted in KlickTipp by its stored ID, with one call
    assert wire(contact_calls(fake)) == [("DELETE", f"/subscriber/{EXISTING_CONTACT_ID}")]
    assert contacts_with(fake, email=EXISTING_EMAIL) == []


@source_policy("ignore")
def test_the_ignore_policy_leaves_klicktipp_alone(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    synced_existing_contact(producer, outcomes, fake)
    before = the_contact(fake, EXISTING_EMAIL)

    # When the contact is deleted in the CRM
    producer.enqueue(deleted(CRM_ID, EXISTING_EMAIL, at=DELETED_AT))
    assert outcomes.wait(2)["deleted_ignore"] == 1

    # Then KlickTipp is not called and the contact is as it was
    assert contact_calls(fake) == []
    assert the_contact(fake, EXISTING_EMAIL) == before


@pytest.mark.parametrize(
    "source_config",
    [{"deletion_policy": p} for p in ("untag", "unsubscribe", "delete", "ignore")],
    ids=lambda c: c["deletion_policy"],
)
def test_after_a_crm_deletion_only_a_tombstone_remains_and_an_older_upsert_is_not_applied(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    synced_existing_contact(producer, outcomes, fake)
    producer.enqueue(deleted(CRM_ID, EXISTING_EMAIL, at=DELETED_AT))
    outcomes.wait(2)

    # Then the state keeps IDs and times only: no address, tags or hashes
    tombstone = stores.state.get(SOURCE, CRM_ID)
    assert tombstone is not None
    assert tombstone.is_tombstone
    assert (tombstone.klicktipp_id, tombstone.occurred_at) == (str(EXISTING_CONTACT_ID), DELETED_AT)
    assert (tombstone.email, tombstone.tags, tombstone.state_hash) == (None, frozenset(), None)

    # When an upsert from before the deletion arrives late
    fake.clear_requests()
    producer.enqueue(
        upsert(CRM_ID, EXISTING_EMAIL, at=DELETED_AT - 1, firstname="Erika", lifecyclestage="lead")
    )
    counts = outcomes.wait(3)

    # Then it is skipped as stale: nothing is re-created, re-tagged or updated
    assert counts["stale"] == 1
    assert contact_calls(fake) == []
    state = stores.state.get(SOURCE, CRM_ID)
    assert state is not None
    assert state.is_tombstone


def test_by_default_a_klicktipp_deletion_request_waits_in_the_review_list(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    env: dict[str, str],
) -> None:
    synced_existing_contact(producer, outcomes, fake)

    # When KlickTipp's Privacy Dashboard asks for the contact's deletion (no policy configured)
    producer.enqueue(deletion_requested(EXISTING_EMAIL, str(EXISTING_CONTACT_ID), at=DELETED_AT))
    assert outcomes.wait(2)["review"] == 1

    # Then a person finds it with `ktsync review list`, with the CRM contact it belongs to
    listed = ktsync("review", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert (item["email"], item["klicktipp_id"]) == (EXISTING_EMAIL, str(EXISTING_CONTACT_ID))
    assert (item["source"], item["crm_contact_id"]) == (SOURCE, CRM_ID)
    # And nothing else happened yet: no instruction to the CRM, no call, the contact is still known
    assert [kind for _, kind, _ in stores.outbound.read()] == ["contact.synced"]
    assert contact_calls(fake) == []
    state = stores.state.get(SOURCE, CRM_ID)
    assert state is not None
    assert not state.is_tombstone


@klicktipp_policy("delete_in_crm", "anonymize")
def test_a_klicktipp_deletion_request_becomes_an_instruction_for_the_crm(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores, policy: str
) -> None:
    synced_existing_contact(producer, outcomes, fake)

    # When KlickTipp's Privacy Dashboard asks for the contact's deletion
    producer.enqueue(deletion_requested(EXISTING_EMAIL, str(EXISTING_CONTACT_ID), at=DELETED_AT))
    assert outcomes.wait(2)[policy] == 1

    # Then the CRM is told, on the outbound stream, which of its contacts to delete or anonymize
    kind = {"delete_in_crm": "crm.delete_contact", "anonymize": "crm.anonymize_contact"}[policy]
    [instruction] = stores.outbound_of(kind)
    assert (instruction["source"], instruction["crm_contact_id"]) == (SOURCE, CRM_ID)
    assert (instruction["email"], instruction["klicktipp_id"]) == (EXISTING_EMAIL, str(EXISTING_CONTACT_ID))
    # And ktsync keeps only a tombstone, without calling KlickTipp
    assert stores.review.list() == []
    assert contact_calls(fake) == []
    state = stores.state.get(SOURCE, CRM_ID)
    assert state is not None
    assert state.is_tombstone
