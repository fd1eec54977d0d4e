"""``crm.contact_changed`` end to end: producer -> Redis -> real Celery worker -> fake HubSpot -> fake KlickTipp.

A HubSpot creation event carries only the contact id; the worker loads the contact from HubSpot's API
(the fake CRM, over loopback) and syncs it like a ``contact.upsert``.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from fake_crm.testing import HUBSPOT_TOKEN, FakeCrmControl, RunningFakeCrm
from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from tests.integration.sync_helpers import (
    T0,
    Outcomes,
    Stores,
    contact_calls,
    manual_tag_names,
    the_contact,
    wait_for,
)

pytestmark = pytest.mark.integration

HUBSPOT_501 = {
    "id": "501",
    "properties": {
        "email": "Alex.Example@Shop.Example",
        "firstname": "Alex",
        "lastname": "Example",
        "website": "https://alex.example",
        "date_of_birth": "1993-12-08",
        "lead_value": "19.99",
        "lifecyclestage": "customer",
        "hs_lead_status": "OPEN",
        "lists": "Newsletter;Webinar Herbst",
        "phone": "",
    },
}


def changed(crm_contact_id: str) -> dict[str, Any]:
    """What a HubSpot ``contact.creation`` webhook becomes: an id and a time, no data."""
    return {"v": 1, "type": "crm.contact_changed", "source": "hubspot", "crm_contact_id": crm_contact_id,
            "occurred_at": T0}  # fmt: skip


@pytest.fixture
def hubspot(crm_server: RunningFakeCrm) -> FakeCrmControl:
    """The fake HubSpot, holding contact 501."""
    crm_server.control.reset()
    crm_server.control.seed("hubspot", [HUBSPOT_501])
    return crm_server.control


@pytest.fixture
def extra_env(hubspot_api_env: dict[str, str]) -> dict[str, str]:
    return hubspot_api_env


def test_a_contact_known_only_by_its_id_is_fetched_from_hubspot_and_synced(
    worker: Celery, producer: Producer, outcomes: Outcomes, fake: FakeControl, hubspot: FakeCrmControl
) -> None:
    # When a HubSpot creation event (an id only) is enqueued
    producer.enqueue(changed("501"))

    # Then the worker read the contact from HubSpot once, with the token
    assert outcomes.wait(1)["synced"] == 1
    [read] = hubspot.requests()
    assert (read["path"], read["authorized"]) == ("/crm/v3/objects/contacts/501", True)

    # And KlickTipp has it with the mapped fields and the segment tags, as for a contact.upsert
    record = the_contact(fake, "alex.example@shop.example")
    assert record["fields"] == {
        CRM_CONTACT_ID_FIELD: "501",
        "fieldFirstName": "Alex",
        "fieldLastName": "Example",
        "fieldWebsite": "https://alex.example",
        "fieldBirthday": "755308800",
        "fieldLeadValue": "1999",
    }
    assert manual_tag_names(fake, record) == {
        "[CRM] [Lifecycle Stage] customer",
        "[CRM] [Lead Status] OPEN",
        "[CRM] [List] Newsletter",
        "[CRM] [List] Webinar Herbst",
    }


def test_a_hubspot_rate_limit_is_retried_after_its_retry_after(
    worker: Celery, producer: Producer, outcomes: Outcomes, fake: FakeControl, hubspot: FakeCrmControl
) -> None:
    # Given HubSpot answers the first read with 429 and Retry-After: 1
    hubspot.fault(429, crm="hubspot", headers={"Retry-After": "1"})

    # When the event is enqueued
    producer.enqueue(changed("501"))

    # Then the task was retried once, no sooner than HubSpot asked, and then synced
    counts = outcomes.wait(1, timeout=20)
    assert (counts["retried"], counts["synced"]) == (1, 1)
    first, second = hubspot.requests()
    assert (first["status"], second["status"]) == (429, 200)
    assert second["at"] - first["at"] >= 0.9
    assert the_contact(fake, "alex.example@shop.example")["fields"]["fieldFirstName"] == "Alex"


def test_a_contact_hubspot_no_longer_has_changes_nothing_in_klicktipp(
    worker: Celery, producer: Producer, outcomes: Outcomes, fake: FakeControl, hubspot: FakeCrmControl
) -> None:
    producer.enqueue(changed("999"))

    wait_for(lambda: outcomes.snapshot()["not_in_crm"] == 1)
    assert contact_calls(fake) == []


def test_a_refused_token_dead_letters_the_event_with_what_to_fix(
    worker: Celery,
    producer: Producer,
    settings: Settings,
    stores: Stores,
    fake: FakeControl,
    hubspot: FakeCrmControl,
) -> None:
    # Given HubSpot refuses the token
    hubspot.fault(401, crm="hubspot")

    # When the event is enqueued
    task_id = producer.enqueue(changed("501"))

    # Then it is dead-lettered at once (no retry can fix a token), saying which variable to check
    letter = wait_for(lambda: stores.dead_letters.get(task_id))
    assert (letter.reason, letter.attempts) == ("crm_fetch", 1)
    assert letter.error["status"] == 401
    assert "check HUBSPOT_ACCESS_TOKEN" in letter.error["message"]
    assert HUBSPOT_TOKEN not in str(letter.error)
    assert contact_calls(fake) == []
