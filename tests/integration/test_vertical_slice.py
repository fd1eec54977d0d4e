"""The foundation end to end: CLI producer -> Redis -> real Celery worker -> fake KlickTipp over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import fake_klicktipp
from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from ktsync.worker.deadletter import RedisDeadLetterStore
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

SEED = Path(fake_klicktipp.__file__).with_name("seed.json")

ALEX = {
    "v": 1,
    "type": "contact.upsert",
    "source": "hubspot",
    "crm_contact_id": "501",
    "email": "Alex.Example@Shop.Example",
    "sms_number": "+49 170 1234567",
    "properties": {
        "firstname": "Alex",
        "lastname": "Example",
        "website": "https://alex.example",
        "date_of_birth": "1993-12-08",
        "lead_value": "19.99",
        "lifecyclestage": "customer",
        "hs_lead_status": "OPEN",
        "lists": ["Newsletter", "Webinar Herbst"],
        "hs_unmapped_property": "ignored",
    },
    "occurred_at": "2026-11-22T10:00:00Z",
}


def ktsync(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ktsync`` command line (as a user or a script would)."""
    return subprocess.run(
        [sys.executable, "-m", "ktsync", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )


def contact(fake: FakeControl, email: str) -> dict[str, Any] | None:
    return next((c for c in fake.state()["contacts"] if c["email"] == email), None)


def tag_names(fake: FakeControl, record: dict[str, Any]) -> set[str]:
    names = {str(t["id"]): t["name"] for t in fake.state()["tags"]}
    return {names[str(t)] for t in record["manual_tags"]}


def test_a_contact_enqueued_by_the_cli_ends_up_in_klicktipp_with_fields_and_tags(
    worker: Celery, fake: FakeControl, env: dict[str, str]
) -> None:
    # When a producer script pipes one event into `ktsync enqueue -`
    result = ktsync("enqueue", "-", env=env, stdin=json.dumps(ALEX) + "\n")
    assert result.returncode == 0, result.stderr
    assert "enqueued 1, rejected 0" in result.stdout

    # Then the worker creates the contact in KlickTipp with converted fields and the segment tags
    record = wait_for(lambda: contact(fake, "alex.example@shop.example"))
    assert record["status"] == "subscribed"  # the configured single opt-in process, explicitly
    assert record["listid"] == 23
    assert record["fields"] == {
        CRM_CONTACT_ID_FIELD: "501",
        "fieldFirstName": "Alex",
        "fieldLastName": "Example",
        "fieldWebsite": "https://alex.example",
        "fieldBirthday": "755308800",
        "fieldLeadValue": "1999",
    }
    assert record["sms_phone"] == "00491701234567"
    assert tag_names(fake, record) == {
        "[CRM] [Lifecycle Stage] customer",
        "[CRM] [Lead Status] OPEN",
        "[CRM] [List] Newsletter",
        "[CRM] [List] Webinar Herbst",
    }
    # And with the fewest calls: one add-or-update carrying one tag, one tag call for the rest
    calls = [(r["method"], r["path"]) for r in fake.requests() if r["path"].startswith("/subscriber")]
    assert calls == [("POST", "/subscriber"), ("POST", "/subscriber/tag")]
    assert fake.state()["doi_emails"] == []  # no accidental double-opt-in mail


def test_enqueue_lists_each_rejected_line_with_field_and_reason(
    env: dict[str, str], settings: Settings
) -> None:
    lines = [
        json.dumps(ALEX),
        json.dumps({**ALEX, "email": "not-an-address"}),
        "",
        json.dumps({**ALEX, "source": "Hub Spot", "occurred_at": "2026-11-22T10:00:00"}),
        "{broken",
    ]
    result = ktsync("enqueue", "-", env=env, stdin="\n".join(lines) + "\n")

    assert result.returncode == 2
    assert "enqueued 1, rejected 3" in result.stdout
    assert result.stderr.splitlines() == [
        "line 2: email: Not a valid email address.",
        "line 4: occurred_at: '2026-11-22T10:00:00' has no time zone (add Z or an offset like +01:00); "
        "source: must be 1 to 32 characters of a-z, 0-9, _ or - (got 'Hub Spot')",
        "line 5: $: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
    ]


def test_status_reports_pending_work_until_a_worker_drains_it(
    app: Celery, env: dict[str, str], producer: Producer, fake: FakeControl
) -> None:
    from celery.contrib.testing.worker import start_worker

    # Given two events and no worker yet
    producer.enqueue_many(
        [ALEX, {**ALEX, "crm_contact_id": "502", "email": "b@shop.example", "sms_number": None}]
    )
    before = json.loads(ktsync("status", "--json", env=env).stdout)
    assert before["queue"]["pending"] == 2
    assert before["queue"]["drained"] is False

    # When a worker runs, Then status shows the queue drained and the outcomes
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"):
        wait_for(
            lambda: json.loads(ktsync("status", "--json", env=env).stdout)["outcomes"].get("synced") == 2
        )
    after = json.loads(ktsync("status", "--json", env=env).stdout)
    assert after["queue"]["drained"] is True
    app.ktsync_runtime.close()


def test_values_klicktipp_would_refuse_are_dead_lettered_before_any_call(
    worker: Celery, fake: FakeControl, producer: Producer, settings: Settings, redis_client: Any
) -> None:
    # Given an event whose website has no scheme and whose lead value is not a number
    bad = {**ALEX, "properties": {"website": "www.alex.example", "lead_value": "viel"}}
    task_id = producer.enqueue(bad)

    # Then it lands in the dead-letter store with its payload and the reason per field
    store = RedisDeadLetterStore(redis_client, settings.key_prefix)
    letter = wait_for(lambda: store.get(task_id))
    assert letter.reason == "mapping"
    assert letter.message == bad
    problems = {p["property"]: p["reason"] for p in letter.error["problems"]}
    assert set(problems) == {"website", "lead_value"}
    # And KlickTipp was never asked to store anything
    assert not [r for r in fake.requests() if r["path"].startswith("/subscriber")]


def test_the_worker_refuses_to_start_when_the_crm_id_field_is_missing(
    fake: FakeControl, env: dict[str, str]
) -> None:
    # Given an account without the "CRM Contact ID" data field
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    seed["fields"] = [f for f in seed["fields"] if f["key"] != CRM_CONTACT_ID_FIELD]
    for existing in seed["contacts"]:
        existing.get("fields", {}).pop(CRM_CONTACT_ID_FIELD, None)
    fake.reset(seed)

    # When a worker starts, Then it stops at once, says what is missing and what to do, and syncs nothing
    result = ktsync("worker", "--concurrency=1", env=env, timeout=30)
    assert result.returncode == 1
    assert "no data field labelled 'CRM Contact ID'" in result.stderr
    assert "create it in KlickTipp" in result.stderr
    assert not [r for r in fake.requests() if r["path"].startswith("/subscriber")]


def test_make_demo_runs_end_to_end_on_embedded_defaults() -> None:
    # The demo starts (and stops) its own Redis, fake KlickTipp and worker.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KTSYNC_", "KLICKTIPP_"))}
    result = subprocess.run(
        [sys.executable, "-m", "ktsync", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== Outcome: synced 47, kept unsubscribed 1" in result.stdout
    assert "dead-lettered 1, rejected at the producer 5" in result.stdout
    assert "dead letter mapping (contact 5091)" in result.stdout
    assert "[CRM] [Lifecycle Stage]" in result.stdout
