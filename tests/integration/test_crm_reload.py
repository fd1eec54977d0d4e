"""Reloading contacts from their CRM as an operator does: the `mapping` runbook and `ktsync resync`.

A plain `dlq replay` resends the stored message, old value included, so a letter whose value was
fixed in the CRM fails again; `dlq replay --refetch` reloads the contact from the CRM's API (the fake
HubSpot over loopback) and syncs what the CRM has now. Without a CRM API a letter is refused and stays,
and the runbook's other way (edit the stored message, enqueue it) works. `resync` reads from the CRM
only where its API is configured, so it never dead-letters a whole source as ``config``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from celery import Celery

from fake_crm.testing import FakeCrmControl, RunningFakeCrm
from fake_klicktipp.testing import FakeControl
from ktsync.producers import Producer
from tests.integration.sync_helpers import Outcomes, Stores, sync_first, the_contact, upsert, wait_for
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration

EMAIL = "alex.example@shop.example"
BAD, FIXED = "www.no-scheme.example", "https://alex.example"


def hubspot_501(website: str) -> dict[str, Any]:
    return {"id": "501", "properties": {"email": EMAIL, "firstname": "Alex", "website": website}}


@pytest.fixture
def hubspot(crm_server: RunningFakeCrm) -> FakeCrmControl:
    """The fake HubSpot, holding contact 501 with a website KlickTipp's URL field cannot take."""
    crm_server.control.reset()
    crm_server.control.seed("hubspot", [hubspot_501(BAD)])
    return crm_server.control


@pytest.fixture
def extra_env(hubspot_api_env: dict[str, str]) -> dict[str, str]:
    """The workers' (and the operator's) HubSpot API access."""
    return hubspot_api_env


@pytest.fixture
def without_api(env: dict[str, str]) -> dict[str, str]:
    """The same environment without any CRM API variable (an operator shell without them)."""
    return {key: value for key, value in env.items() if not key.startswith("HUBSPOT_")}


def mapping_letter(producer: Producer, outcomes: Outcomes, stores: Stores) -> str:
    """Given: HubSpot sent contact 501 with its bad website, and the worker dead-lettered it as mapping."""
    letter_id = producer.enqueue(upsert("501", EMAIL, firstname="Alex", website=BAD))
    outcomes.wait(1)
    letter = stores.dead_letters.get(letter_id)
    assert letter is not None
    assert letter.reason == "mapping"
    return letter_id


def test_the_mapping_runbook_fix_the_value_in_the_crm_then_replay_with_refetch(
    worker: Celery, producer: Producer, outcomes: Outcomes, stores: Stores, fake: FakeControl,
    hubspot: FakeCrmControl, env: dict[str, str],
) -> None:  # fmt: skip
    letter_id = mapping_letter(producer, outcomes, stores)
    # And the operator fixed the value in the CRM
    hubspot.seed("hubspot", [hubspot_501(FIXED)])

    # When the letter is replayed as it is, it fails again: the stored message has the old value
    assert "1 replayed, 0 refused" in ktsync("dlq", "replay", "--reason", "mapping", env=env).stdout
    wait_for(lambda: outcomes.finished() == 2)
    again = stores.dead_letters.get(letter_id)
    assert again is not None
    assert (again.reason, again.replays) == ("mapping", 1)

    # When it is replayed with --refetch
    result = ktsync("dlq", "replay", "--reason", "mapping", "--refetch", env=env)

    # Then the contact is reloaded from HubSpot, synced with the fixed value, and the letter leaves
    assert result.returncode == 0, result.stderr
    assert f"{letter_id}: refetched as task " in result.stdout
    assert "1 replayed, 0 refused" in result.stdout
    wait_for(lambda: stores.dead_letters.get(letter_id) is None)
    assert outcomes.snapshot()["replay_succeeded"] == 1
    assert [r["path"] for r in hubspot.requests("hubspot")] == ["/crm/v3/objects/contacts/501"]
    assert the_contact(fake, EMAIL)["fields"]["fieldWebsite"] == FIXED


def test_without_a_crm_api_refetch_refuses_the_letter_and_editing_the_message_is_the_way(
    worker: Celery, producer: Producer, outcomes: Outcomes, stores: Stores, fake: FakeControl,
    hubspot: FakeCrmControl, without_api: dict[str, str],
) -> None:  # fmt: skip
    letter_id = mapping_letter(producer, outcomes, stores)

    # When --refetch is asked where no CRM API is configured
    result = ktsync("dlq", "replay", letter_id, "--refetch", env=without_api)

    # Then the letter is refused with what to do instead, and stays
    assert result.returncode == 0, result.stderr
    assert (f"{letter_id}: refused: no CRM API is configured for source 'hubspot' (HUBSPOT_ACCESS_TOKEN is "
            "not set); fix the value in the CRM so that it sends a new event") in result.stdout  # fmt: skip
    assert "0 replayed, 1 refused (they stay in the dead-letter queue)" in result.stdout
    left = stores.dead_letters.get(letter_id)
    assert left is not None
    assert left.replays == 0

    # When the operator edits the stored message, enqueues it and purges the letter (the runbook's way)
    shown = ktsync("dlq", "show", letter_id, "--message", env=without_api)
    message = json.loads(shown.stdout)
    message["properties"]["website"] = FIXED
    enqueued = ktsync("enqueue", "-", env=without_api, stdin=json.dumps(message) + "\n")
    assert enqueued.returncode == 0, enqueued.stderr
    outcomes.wait(2)
    assert f"{letter_id}: purged" in ktsync("dlq", "purge", letter_id, env=without_api).stdout

    # Then KlickTipp has the fixed value and the dead-letter queue is empty
    assert the_contact(fake, EMAIL)["fields"]["fieldWebsite"] == FIXED
    assert stores.dead_letters.count() == 0


def test_resync_without_a_crm_api_rereads_klicktipp_and_dead_letters_nothing(
    worker: Celery, producer: Producer, outcomes: Outcomes, stores: Stores, fake: FakeControl,
    hubspot: FakeCrmControl, without_api: dict[str, str],
) -> None:  # fmt: skip
    # Given a synced HubSpot contact, and an operator shell without HubSpot's API
    sync_first(producer, outcomes, fake, upsert("501", EMAIL, firstname="Alex"))

    # When the source is resynced without saying --from
    result = ktsync("resync", "--source", "hubspot", env=without_api)

    # Then its status is re-read from KlickTipp, nothing asks the CRM, nothing is dead-lettered
    assert result.returncode == 0, result.stderr
    assert "enqueued 1 ktsync.refresh_from_klicktipp for source hubspot (--from klicktipp)" in result.stdout
    wait_for(lambda: outcomes.snapshot()["refreshed"] == 1)
    assert hubspot.requests("hubspot") == []
    assert stores.dead_letters.count() == 0


def test_resync_from_the_crm_without_its_api_is_refused_up_front(
    producer: Producer, outcomes: Outcomes, stores: Stores, without_api: dict[str, str]
) -> None:
    result = ktsync("resync", "--source", "hubspot", "--from", "crm", env=without_api)

    assert result.returncode == 1
    assert ("--from crm: no CRM API is configured for source 'hubspot' (HUBSPOT_ACCESS_TOKEN is not set); "
            "every contact would be dead-lettered as config") in result.stderr  # fmt: skip
    assert "Traceback" not in result.stderr


def test_resync_with_the_crm_api_reloads_each_contact_from_the_crm(
    worker: Celery, producer: Producer, outcomes: Outcomes, stores: Stores, fake: FakeControl,
    hubspot: FakeCrmControl, env: dict[str, str],
) -> None:  # fmt: skip
    # Given a synced HubSpot contact whose website the CRM has since fixed
    sync_first(producer, outcomes, fake, upsert("501", EMAIL, firstname="Alex"))
    hubspot.seed("hubspot", [hubspot_501(FIXED)])

    # When the source is resynced without saying --from, where HubSpot's API is configured
    result = ktsync("resync", "--source", "hubspot", env=env)

    # Then each contact is loaded from HubSpot and synced
    assert result.returncode == 0, result.stderr
    assert "(--from crm)" in result.stdout
    wait_for(lambda: the_contact(fake, EMAIL)["fields"].get("fieldWebsite") == FIXED)
    assert stores.dead_letters.count() == 0
