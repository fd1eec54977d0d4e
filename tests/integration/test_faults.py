"""KlickTipp misbehaving under a running worker: 5xx bursts, timeouts, an outage, lost sessions, 429s,
garbage answers, refused credentials. After each, every contact that can be synced is synced exactly
once, everything else is dead-lettered with the right reason, and nothing is lost.

Real parts only: the fake KlickTipp's own fault injection over loopback HTTP, a real Redis, a real
Celery worker (threads pool) in this process, and a `ktsync worker` process beside it where the
behaviour spans workers.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from tests.integration.fault_helpers import (
    WorkerProcess,
    assert_each_synced_once,
    batch,
    reasons,
    tune,
    worker_process,
)
from tests.integration.sync_helpers import Outcomes, Stores, calls_of, wait_for

pytestmark = pytest.mark.integration

# Transient failures retried quickly and often enough that a random 30 % failure rate never exhausts
# them (a task of ~3 calls fails an attempt with p ~ 0.66; 0.66**30 ~ 4e-6).
FAST_RETRIES = {"max_attempts": 30, "min_backoff": 0.05, "max_backoff": 0.5}
LOGIN = "api.account.login"


@pytest.fixture
def tuning() -> dict[str, dict[str, Any]]:
    """Config sections this test needs (merged over :data:`FAST_RETRIES`); parametrize it."""
    return {}


@pytest.fixture
def env(env: dict[str, str], tuning: dict[str, dict[str, Any]]) -> dict[str, str]:
    sections: dict[str, dict[str, Any]] = {"retry": {**FAST_RETRIES, **tuning.get("retry", {})}}
    tune(Path(env["KTSYNC_CONFIG"]), **{**tuning, **sections})
    return env


def tuned(test_id: str, **sections: dict[str, Any]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("tuning", [sections], ids=[test_id])


@pytest.fixture
def second_worker(env: dict[str, str], worker: Celery, tmp_path: Path) -> Iterator[WorkerProcess]:
    """Another worker, a ``ktsync worker`` process with a KlickTipp session of its own, same Redis.

    (A second Celery worker cannot run in this process: both would share kombu's global event loop.)
    """
    with worker_process(env, tmp_path / "second-worker.log", "--pool=threads", "--concurrency=2") as second:
        second.wait_ready()
        yield second


def retry_reasons(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """``reason=...`` of every ``outcome=retry`` line the tasks logged."""
    found = (re.search(r"outcome=retry reason=(\w+)", r.getMessage()) for r in caplog.records)
    return Counter(match.group(1) for match in found if match)


# -- transient failures: retried until synced ---------------------------------------------------------


def test_a_burst_of_5xx_answers_is_retried_until_every_contact_is_synced_once(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # Given KlickTipp answers about a third of all requests (logins included) with 503
    fake.faults(error_rate=0.3, error_status=503, random_seed=5)
    messages = batch(20)

    # When a batch of new contacts is enqueued
    producer.enqueue_many(messages)
    counts = outcomes.wait(20, timeout=30)

    # Then every contact is synced exactly once, after retries, and nothing is dead-lettered
    assert counts["synced"] == 20, counts
    assert counts["retried"] > 0, counts
    assert any(r["status"] == 503 for r in fake.requests())
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)


@pytest.mark.slow
@tuned("read_timeout_0.3s", klicktipp={"read_timeout": 0.3})
def test_answers_slower_than_the_read_timeout_are_retried_as_timeouts_until_synced(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ktsync.worker.tasks")
    # Given KlickTipp takes 0.6 s to answer, twice the client's read timeout
    fake.faults(latency_ms=600)
    messages = batch(10)

    # When a batch is enqueued, and KlickTipp speeds up again after a few attempts timed out
    producer.enqueue_many(messages)
    wait_for(lambda: outcomes.snapshot()["retried"] >= 4)
    fake.faults(latency_ms=0)
    counts = outcomes.wait(10, timeout=30)

    # Then every contact is synced exactly once; the failed attempts were retried as timeouts
    assert counts["synced"] == 10, counts
    assert retry_reasons(caplog)["timeout"] >= 4, retry_reasons(caplog)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)


@pytest.mark.slow
@tuned(
    "outage_30s",
    # Backoff up to 4 s over 40 attempts: ~75 s of patience on average, never less than 30 s in practice
    # (the sum of the 37 later delays, uniform in [0, 4], is 74 s +- 7 s). Delays above 2 s are parked.
    retry={"max_attempts": 40, "min_backoff": 1, "max_backoff": 4, "max_broker_countdown": 2},
)
def test_contacts_enqueued_during_a_30_second_outage_are_all_synced_after_it(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: Any,
    settings: Settings,
) -> None:
    # Given KlickTipp answers every request with 503 for the next 30 seconds
    fake.faults(outage_seconds=30)
    messages = batch(10)

    # When contacts are enqueued during the outage
    producer.enqueue_many(messages)
    counts = outcomes.wait(10, timeout=60)

    # Then all of them are synced once it is over, and none was given up on
    assert counts["synced"] == 10, counts
    assert sum(r["status"] == 503 for r in fake.requests()) >= 10
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)
    # And the delays longer than the broker countdown waited in ktsync's Redis schedule, now empty
    assert counts["parked"] > 0, counts
    assert redis_client.zcard(f"{settings.key_prefix}:schedule") == 0


@tuned("no_broker_countdown", retry={"max_broker_countdown": 0})
def test_a_retry_parked_in_the_redis_schedule_is_moved_back_and_synced(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: Any,
    settings: Settings,
) -> None:
    # Given every retry delay is longer than the broker may hold (max_broker_countdown: 0)
    # and KlickTipp fails every request for now
    fake.faults(error_rate=1.0)
    messages = batch(1)

    # When a contact fails, its retry is parked, and KlickTipp recovers
    producer.enqueue_many(messages)
    wait_for(lambda: outcomes.snapshot()["parked"] >= 1)
    fake.faults(error_rate=0.0)
    counts = outcomes.wait(1, timeout=15)

    # Then the worker's schedule mover put the task back on the queue and it synced the contact
    assert counts["synced"] == 1, counts
    assert counts["retried"] == counts["parked"] >= 1, counts  # every retry went through the schedule
    assert redis_client.zcard(f"{settings.key_prefix}:schedule") == 0
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)


@tuned("three_attempts", retry={"max_attempts": 3})
def test_a_failure_with_an_empty_body_is_dead_lettered_with_the_http_reason_phrase(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # Given KlickTipp failing every call with a 500 and nothing in the body, as recorded
    fake.use_profile("recorded")
    fake.faults(error_rate=1.0, error_status=500)

    # When a contact's retries run out
    task_id = producer.enqueue(batch(1)[0])
    counts = outcomes.wait(1)

    # Then the dead letter still tells the operator what KlickTipp said: the status and its phrase
    assert counts["dead_lettered"] == 1, counts
    letter = stores.dead_letters.get(task_id)
    assert letter is not None
    assert letter.reason == "retries_exhausted"
    assert letter.error["message"] == "HTTP 500 Internal Server Error with an empty body"
    assert letter.error["http_reason"] == "Internal Server Error"


def test_sessions_invalidated_mid_run_are_replaced_by_one_new_login(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # Given a batch in progress, slowed down so that it is still running a moment later
    fake.faults(latency_ms=40)
    messages = batch(20)
    producer.enqueue_many(messages)
    wait_for(lambda: outcomes.snapshot()["synced"] >= 3)

    # When KlickTipp drops every session mid-run
    assert fake.invalidate_sessions() >= 1
    synced_before = outcomes.snapshot()["synced"]
    counts = outcomes.wait(20, timeout=30)

    # Then the worker logs in once more and syncs the rest; nothing is dead-lettered as auth
    assert synced_before < 20, "the batch ended before the sessions were dropped"
    assert counts["synced"] == 20, counts
    assert len(calls_of(fake, LOGIN)) == 2  # one session per worker process, replaced once
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)


# The fake's Retry-After is 1 s (it refills one token in 1/rate s, rounded up to whole seconds).
# Tolerances of the pause window: a request already past ktsync's gate when the 429 arrived may still
# reach the fake just after it (loopback plus thread scheduling: 150 ms allowed); the pause is kept
# in Redis with millisecond precision and starts when the 429 is seen, a little after the fake sent it.
IN_FLIGHT_TOLERANCE = 0.15
PAUSE_END_TOLERANCE = 0.05


@pytest.mark.slow
@tuned("ktsync_50_per_s_vs_fake_10", rate={"per_second": 50, "burst": 50, "max_in_flight": 0})
def test_a_429_pauses_the_whole_account_for_retry_after_across_workers(
    worker: Celery,
    second_worker: WorkerProcess,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    # Given KlickTipp allows 10 requests/s, and ktsync (two workers) believes it may send 50/s
    fake.faults(rate_limit={"per_second": 10, "burst": 10})
    messages = batch(20)

    # When a batch is synced
    producer.enqueue_many(messages)
    counts = outcomes.wait(20, timeout=30)

    # Then KlickTipp answered 429 at times
    log = fake.requests()
    limited = [r for r in log if r["status"] == 429]
    assert limited, "no 429: the test did not exceed KlickTipp's budget"
    # And after each 429, no worker sent anything until Retry-After had passed
    for rejected in limited:
        window = (rejected["ts"] + IN_FLIGHT_TOLERANCE, rejected["ts"] + 1.0 - PAUSE_END_TOLERANCE)
        inside = [(r["ts"] - rejected["ts"], r["path"]) for r in log if window[0] < r["ts"] < window[1]]
        assert not inside, f"requests {inside} during the pause after the 429 at {rejected['ts']}"
    # And everything was synced once (by both workers), nothing dead-lettered
    assert counts["synced"] == 20, counts
    assert "outcome=synced" in second_worker.output()
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)


@pytest.mark.slow
@tuned("ktsync_20_per_s_vs_fake_20", rate={"per_second": 20, "burst": 20, "max_in_flight": 0})
def test_a_configured_rate_equal_to_the_accounts_budget_never_causes_a_429(
    worker: Celery,
    second_worker: WorkerProcess,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    # Given KlickTipp allows 20 requests/s with a burst of 20, exactly what ktsync is configured for
    fake.faults(rate_limit={"per_second": 20, "burst": 20})
    messages = batch(30)

    # When two workers sync a batch that needs several seconds of that budget
    producer.enqueue_many(messages)
    counts = outcomes.wait(30, timeout=30)

    # Then KlickTipp never had to say 429
    statuses = Counter(r["status"] for r in fake.requests())
    assert statuses[429] == 0, statuses
    assert counts["synced"] == 30, counts
    assert_each_synced_once(fake, messages)


def test_malformed_answers_are_retried_until_every_contact_is_synced_once(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # Given a fifth of KlickTipp's answers are 200 with an HTML body (after the change was applied)
    fake.faults(malformed_rate=0.2, random_seed=11)
    messages = batch(20)

    # When a batch is synced
    producer.enqueue_many(messages)
    counts = outcomes.wait(20, timeout=30)

    # Then each contact exists once: repeating an applied change after a garbled answer is harmless
    assert counts["synced"] == 20, counts
    assert counts["retried"] > 0, counts
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, messages)
