"""Dry run: the exact KlickTipp calls each contact would cause, and why — with nothing written."""

from __future__ import annotations

import json

import pytest
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.producers import Producer
from tests.integration.sync_helpers import T0, Outcomes, upsert
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration

WRITES = ("POST", "PUT", "DELETE")


READS_BY_POST = ("/account/login", "/account/logout", "/subscriber/search")


def writes(fake: FakeControl) -> list[tuple[str, str]]:
    """Requests that change the account (logins and the search are POSTs that change nothing)."""
    requests = fake.requests()
    return [
        (r["method"], r["path"]) for r in requests if r["method"] in WRITES and r["path"] not in READS_BY_POST
    ]


def test_enqueue_dry_run_prints_the_planned_calls_and_writes_nothing(
    fake: FakeControl, env: dict[str, str]
) -> None:
    # Given a new contact, an invalid line and a deletion
    lines = [
        json.dumps(upsert("701", "dry@shop.example", lifecyclestage="lead", lists=["Brand New List"])),
        json.dumps(upsert("702", "bad@shop.example", website="www.no-scheme.example")),
        json.dumps(
            {
                "v": 1,
                "type": "contact.deleted",
                "source": "hubspot",
                "crm_contact_id": "703",
                "occurred_at": T0,
            }
        ),
    ]

    # When they are dry-run through the CLI
    result = ktsync("enqueue", "--dry-run", "-", env=env, stdin="\n".join(lines) + "\n")

    # Then each line gets its plan (or its rejection) and KlickTipp saw no write at all
    out = result.stdout
    assert result.returncode == 2, result.stderr
    assert "line 1 contact.upsert hubspot/701 (dry@shop.example): 3 call(s)" in out
    assert "api.tag.create(name=[CRM] [List] Brand New List) - the tag does not exist yet" in out
    assert "api.subscriber.create(email=dry@shop.example, listid=23, tagid=11" in out
    assert "api.subscriber.tag(" in out
    assert "line 2: rejected - website -> fieldWebsite: URL must start with http:// or https://" in out
    assert "line 3 contact.deleted hubspot/703 (None): planned - no KlickTipp call" in out
    assert writes(fake) == []
    assert not [c for c in fake.state()["contacts"] if c["email"] == "dry@shop.example"]


def test_a_dry_run_message_through_the_worker_changes_nothing(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    producer.enqueue({**upsert("704", "dry2@shop.example", lifecyclestage="customer"), "dry_run": True})
    assert outcomes.wait(1)["planned"] == 1
    assert writes(fake) == []
