"""Delivery under contention: live changes overtake bulk work, waiting work holds no worker slot,
bulk producers wait at the backlog bound, and server-chosen waits are capped.

Real parts only: the in-process Celery worker (threads pool) on the test's Redis, the fake KlickTipp
over loopback (enforcing a budget where the test says so), and the real ``ktsync`` command.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.config.settings import Settings
from ktsync.core.broker import deferred_by_lane, key_queue
from ktsync.core.lanes import Lane, fairness_key
from ktsync.producers import Producer
from ktsync.producers.backlog import bulk_backlog
from ktsync.queues import limiter_status
from ktsync.worker.lanemetrics import read_latency
from ktsync.worker.runtime import account_key, limits
from tests.integration.fault_helpers import batch, reasons, tune, unacked_key
from tests.integration.sync_helpers import Outcomes, Stores, upsert, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def tuning() -> dict[str, dict[str, Any]]:
    """Config sections of the test (merged into its config file); parametrize it."""
    return {}


@pytest.fixture
def env(env: dict[str, str], tuning: dict[str, dict[str, Any]]) -> dict[str, str]:
    if tuning:
        tune(Path(env["KTSYNC_CONFIG"]), **tuning)
    return env


def tuned(test_id: str, **sections: dict[str, Any]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("tuning", [sections], ids=[test_id])


def synced(stores: Stores, crm_ids: list[str]) -> int:
    return sum(1 for crm_id in crm_ids if stores.state.get("hubspot", crm_id) is not None)


@tuned("budget_10_per_s", rate={"per_second": 10, "burst": 5, "max_in_flight": 0})
def test_a_live_change_overtakes_a_bulk_import_under_a_budget(
    worker: Celery, fake: FakeControl, settings: Settings, stores: Stores, redis_client: redis.Redis
) -> None:
    # Given KlickTipp allows 10 requests/s, and a bulk import of 60 new contacts (~12 s of budget) under way
    fake.faults(rate_limit={"per_second": 10, "burst": 5})
    imported = batch(60, name="bulk")
    with Producer(settings, lane="bulk") as producer:
        producer.enqueue_many(imported)
    bulk_ids = [m["crm_contact_id"] for m in imported]
    wait_for(lambda: synced(stores, bulk_ids) >= 5, timeout=20)

    # When a live change arrives
    with Producer(settings) as producer:
        started = time.monotonic()
        producer.enqueue(upsert("live-1", "live-1@lanes.example", lifecyclestage="customer"))

    # Then it is synced within seconds, long before the import is through
    wait_for(lambda: stores.state.get("hubspot", "live-1") is not None, timeout=10)
    latency = time.monotonic() - started
    assert synced(stores, bulk_ids) < len(bulk_ids), "the import ended before the live change: no contention"
    assert latency < 6, latency
    # And the import finishes, everything exactly once, and nothing was dead-lettered or refused with 429
    wait_for(lambda: synced(stores, bulk_ids) == len(bulk_ids), timeout=60)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert not [r for r in fake.requests() if r["status"] == 429]
    # And each lane's latency was measured where the change was applied
    measured = read_latency(redis_client, settings.key_prefix)
    assert (measured[Lane.LIVE].count, measured[Lane.BULK].count) == (1, 60)


@tuned("budget_0_2_per_s", rate={"per_second": 0.2, "burst": 1, "max_in_flight": 0})
def test_a_bulk_backlog_whose_budget_is_spent_holds_no_worker_slot(
    worker: Celery,
    fake: FakeControl,
    settings: Settings,
    stores: Stores,
    outcomes: Outcomes,
    redis_client: redis.Redis,
) -> None:
    # Given a contact synced once (a resend of it costs no call), and a budget of one call per 5 s
    contact = upsert("steady", "steady@lanes.example", firstname="Sam")
    with Producer(settings) as live:
        live.enqueue(contact)
        outcomes.wait(1, timeout=30)

        # When a bulk backlog arrives that the budget cannot serve for minutes
        with Producer(settings, lane="bulk") as bulk:
            bulk.enqueue_many(batch(30, name="spent"))

        # Then the workers put it aside in its key queue instead of holding their slots with it
        queue, unacked = settings.broker_prefix + settings.worker.lane_queue(Lane.BULK), unacked_key(settings)
        wait_for(lambda: redis_client.llen(queue) == 0, timeout=30)
        time.sleep(0.5)  # the last ones taken from the queue are being put aside
        assert deferred_by_lane(redis_client, settings.key_prefix)[Lane.BULK] >= 25
        held = []
        for _ in range(20):
            held.append(redis_client.hlen(unacked))
            time.sleep(0.1)
        assert max(held) <= 2, held  # the one the budget serves now, at most one more being put aside

        # And work that can run now runs at once: the resend of the synced contact
        started = time.monotonic()
        live.enqueue(contact)
        counts = outcomes.wait(2, timeout=10)
    assert counts["unchanged"] == 1, counts
    assert time.monotonic() - started < 5


IMPORTED = 100


@pytest.fixture
def contacts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    rows = [f"c{i},c{i}@import.example,N{i}" for i in range(IMPORTED)]
    path.write_text("id,email,firstname\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _as_in_a_terminal() -> None:
    """Ctrl-C as an operator's foreground command gets it: a test run started in the background by a
    script (``cmd &``) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ktsync(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ktsync", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_in_a_terminal,
    )


@tuned("backlog_20", bulk={"max_backlog": 20}, rate={"per_second": 40, "burst": 10, "max_in_flight": 0})
def test_an_import_waits_at_the_backlog_bound_and_finishes(
    worker: Celery,
    fake: FakeControl,
    settings: Settings,
    stores: Stores,
    redis_client: redis.Redis,
    env: dict[str, str],
    contacts_csv: Path,
) -> None:
    # Given a bulk backlog bounded at 20 and workers slower than the import
    # When 100 contacts are imported
    process = ktsync("import", str(contacts_csv), "--source", "hubspot", env=env)
    highest = 0
    while process.poll() is None:
        highest = max(highest, bulk_backlog(redis_client, settings))
        time.sleep(0.02)
    out, err = process.communicate()

    # Then the import finished, never holding more than the bound in Redis
    assert process.returncode == 0, err
    assert f"enqueued {IMPORTED}" in out
    assert 0 < highest <= 20, highest
    # And every contact is synced
    ids = [f"c{i}" for i in range(IMPORTED)]
    wait_for(lambda: synced(stores, ids) == IMPORTED, timeout=60)


@tuned("backlog_10", bulk={"max_backlog": 10})
def test_an_interrupted_import_says_how_far_it_got_and_how_to_resume(
    fake: FakeControl, settings: Settings, redis_client: redis.Redis, env: dict[str, str], contacts_csv: Path
) -> None:
    # Given an import waiting at a full backlog (no worker drains it)
    process = ktsync("import", str(contacts_csv), "--source", "hubspot", env=env)
    wait_for(lambda: bulk_backlog(redis_client, settings) == 10, timeout=20)
    time.sleep(0.5)

    # When it is interrupted with Ctrl-C
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)

    # Then it says how far it got, that running it again is safe, and how to resume after that line
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "lines 1-11 are done (10 enqueued, 0 rejected)" in err  # line 1 is the CSV header
    assert "running it again from the start is safe" in err
    assert "--start-line 12" in err
    assert "Traceback" not in err


@pytest.fixture
def everything_refused_with_a_day_to_wait(fake: FakeControl) -> Iterator[None]:
    fake.faults(error_rate=1.0, error_status=429, retry_after=86400)
    yield
    fake.faults(error_rate=0.0, retry_after=None)


def test_retry_after_of_a_day_pauses_the_account_no_longer_than_max_pause_at_the_default(
    worker: Celery,
    everything_refused_with_a_day_to_wait: None,
    settings: Settings,
    env: dict[str, str],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given KlickTipp answers 429 with "Retry-After: 86400", and the default rate.max_pause (300 s)
    assert settings.rate.max_pause == 300
    caplog.set_level(logging.WARNING)

    # When a live change is synced
    with Producer(settings) as producer:
        producer.enqueue(upsert("patient", "patient@lanes.example"))

    # Then the account is paused for 300 s, not a day, and the task waits (deferred) no longer either
    wait_for(lambda: deferred_by_lane(redis_client, settings.key_prefix)[Lane.LIVE] == 1, timeout=15)
    state = limiter_status(redis_client, settings.key_prefix, account_key(env), limits=limits(settings))
    assert 250 < state.paused_for <= 300, state
    key = key_queue(settings.key_prefix, fairness_key(account_key(env), Lane.LIVE))
    [(_, release)] = redis_client.zrange(key, 0, 0, withscores=True)
    assert release / 1000 - time.time() <= 300 + 2
    # And the value KlickTipp asked for is logged as a warning
    assert any("86400" in r.getMessage() and "max_pause" in r.getMessage() for r in caplog.records)


@tuned("max_pause_2s", rate={"per_second": 1000, "burst": 1000, "max_in_flight": 0, "max_pause": 2})
def test_a_change_refused_with_a_days_retry_after_is_synced_once_max_pause_passed(
    worker: Celery, fake: FakeControl, settings: Settings, stores: Stores, outcomes: Outcomes
) -> None:
    # Given KlickTipp answers one 429 with "Retry-After: 86400", then recovers
    fake.faults(rate_limit={"per_second": 0.001, "burst": 1}, retry_after=86400)
    with Producer(settings) as producer:
        producer.enqueue(upsert("warm-up", "warm-up@lanes.example"))  # takes the fake's one token
        wait_for(lambda: any(r["status"] == 429 for r in fake.requests()), timeout=15)
        fake.faults(rate_limit=None, retry_after=None)

    # Then the change is synced once the capped pause (2 s) has passed, not a day later
    counts = outcomes.wait(1, timeout=20)
    assert counts["synced"] == 1, counts
    assert stores.state.get("hubspot", "warm-up") is not None


def test_messages_on_the_queue_from_before_lanes_are_still_consumed(
    worker: Celery, settings: Settings, outcomes: Outcomes, stores: Stores
) -> None:
    # Given an older producer that sends to the single queue ktsync had before lanes
    old = Celery("old-producer", broker=settings.redis_url, set_as_current=False)
    old.conf.broker_transport_options = worker.conf.broker_transport_options
    message = upsert("old-1", "old-1@lanes.example")
    old.send_task("ktsync.sync_contact", args=[message], queue=settings.worker.queue)
    old.close()

    # Then a worker takes it, as live work
    counts = outcomes.wait(1, timeout=15)
    assert counts["synced"] == 1, counts
    assert stores.state.get("hubspot", "old-1") is not None
