"""Scheduled reconciliation end to end: `ktsync beat` has a real worker re-check a stale contact, keeping
its schedule file where the configuration says (never in /tmp)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from celery import Celery

from fake_klicktipp.testing import FakeControl, partner_headers
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from tests.integration.fault_helpers import tune
from tests.integration.sync_helpers import Outcomes, Stores, sync_first, upsert, wait_for

pytestmark = pytest.mark.integration


def test_beat_has_a_stale_contact_rechecked_and_reports_its_status_from_klicktipp(
    env: dict[str, str],
    worker: Celery,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    fake: FakeControl,
    settings: Settings,
    tmp_path: Path,
) -> None:
    # Given a contact synced two days ago, who has since unsubscribed in KlickTipp (an unsubscribe link)
    sync_first(producer, outcomes, fake, upsert("801", "stale@shop.example", lifecyclestage="lead"))
    record = stores.state.get("hubspot", "801")
    assert record is not None
    stores.state.put(replace(record, updated_at=time.time() - 2 * 86400))
    kt_id = record.klicktipp_id
    fake_unsubscribe(fake, "stale@shop.example")
    schedule = tmp_path / "state" / "beat-schedule"  # a directory that does not exist yet
    tune(Path(env["KTSYNC_CONFIG"]), reconcile={"interval": 1, "max_age": 3600},
         beat={"schedule_file": str(schedule)})  # fmt: skip

    # When `ktsync beat` runs (the worker is the test's own)
    beat = subprocess.Popen(
        [sys.executable, "-m", "ktsync", "beat", "--loglevel=WARNING"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: outcomes.snapshot()["refreshed"] >= 1, timeout=30)
    finally:
        beat.terminate()
        beat.wait(timeout=10)

    # Then KlickTipp's status reached the CRM side and the state store, and the contact is fresh again
    synced = [p for p in stores.outbound_of("contact.synced") if p["klicktipp_id"] == kt_id]
    assert synced[-1]["subscription"] == "unsubscribed"
    assert synced[-1]["crm_contact_id"] == "801"
    refreshed = stores.state.get("hubspot", "801")
    assert refreshed is not None
    assert refreshed.subscription == "unsubscribed"
    assert refreshed.updated_at > time.time() - 60
    # And beat kept its schedule in the configured file (shelve may add a suffix), nothing in /tmp
    assert list(schedule.parent.glob("beat-schedule*")), list(tmp_path.rglob("*"))
    assert not list(Path(tempfile.gettempdir()).glob(f"ktsync-beat-{settings.key_prefix}*"))


def fake_unsubscribe(fake: FakeControl, email: str) -> None:
    """The contact clicks an unsubscribe link: KlickTipp's own API, not ktsync."""
    requests.post(f"{fake.base_url}/subscriber/unsubscribe", json={"email": email}, headers=partner_headers(),
                  timeout=5).raise_for_status()  # fmt: skip
