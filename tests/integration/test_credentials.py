"""A misconfigured worker cannot harm healthy ones: credentials are checked at start-up with a real
call, and a credential KlickTipp refuses later stops only the workers holding it.

Real parts: the in-process Celery worker, ``ktsync worker`` processes, the fake KlickTipp over
loopback (whose account password can be changed, as its owner would), the real ``ktsync`` command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from fake_klicktipp.testing import (
    DEMO_CUSTOMER_KEY,
    DEMO_DEVELOPER_KEY,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    FakeControl,
)
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from ktsync.worker.credentials import RedisCredentialHealth
from tests.integration.fault_helpers import (
    WorkerProcess,
    assert_each_synced_once,
    batch,
    reasons,
    worker_process,
)
from tests.integration.sync_helpers import Outcomes, Stores, calls_of, wait_for
from tests.ops.conftest import ktsync

pytestmark = pytest.mark.integration

LOGIN = "api.account.login"
PARTNER = {"KLICKTIPP_DEVELOPER_KEY": DEMO_DEVELOPER_KEY, "KLICKTIPP_CUSTOMER_KEY": DEMO_CUSTOMER_KEY}


def test_a_worker_with_a_wrong_password_does_not_start(env: dict[str, str], fake: FakeControl) -> None:
    # Given a wrong password, When a worker starts
    result = ktsync("worker", "--quiet", env={**os.environ, **env, "KLICKTIPP_PASSWORD": "not-the-password"})

    # Then it refuses to, says why, and never shows the password
    assert result.returncode == 1
    assert "KlickTipp refuses this worker's credentials" in result.stderr
    assert "Not starting" in result.stderr
    assert "Traceback" not in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
    assert len(calls_of(fake, LOGIN)) == 1  # checked with a real call


@pytest.mark.parametrize("extra_env", [{"KLICKTIPP_PASSWORD": "wrong"}], ids=["wrong_password"])
def test_a_refused_worker_gives_its_tasks_back_steps_aside_and_resumes_when_its_credential_works(
    worker: Celery,
    env: dict[str, str],
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the only worker has a password KlickTipp refuses
    caplog.set_level(logging.WARNING)
    messages = batch(20)

    # When a batch is enqueued
    producer.enqueue_many(messages)

    # Then the worker raises the alarm, steps aside, and nothing is dead-lettered: the tasks wait
    wait_for(lambda: any(r.getMessage().startswith("ALARM") for r in caplog.records), timeout=15)
    wait_for(lambda: "pause" in _consumer_events(caplog), timeout=15)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert outcomes.snapshot()["auth_alarm"] == 1
    logins = len(calls_of(fake, LOGIN))
    assert logins <= 8, logins  # a few threads' tasks at most, then no storm
    alarms = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALARM")]
    assert not [a for a in alarms if "wrong" in a]  # never the password
    status = ktsync("status", "--json", "--ping-timeout", "0", env={**os.environ, **env})
    assert '"credentials_refused": [{' in status.stdout

    # When the account's owner sets the password this worker has
    fake.change_password(DEMO_USERNAME, "wrong")

    # Then its re-check (after 5 s) succeeds, it takes the tasks again, and each contact is synced once
    counts = outcomes.wait(20, timeout=60)
    assert counts["synced"] == 20, counts
    assert_each_synced_once(fake, messages)
    assert "resume" in _consumer_events(caplog)


def _consumer_events(caplog: pytest.LogCaptureFixture) -> list[str]:
    events = []
    for record in caplog.records:
        text = record.getMessage()
        if "takes no tasks" in text:
            events.append("pause")
        if "taking tasks again" in text:
            events.append("resume")
    return events


@pytest.fixture
def password_worker(env: dict[str, str], worker: Celery, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A second worker, a ``ktsync worker`` process logging in with the account's password."""
    session_env = {k: v for k, v in env.items() if k not in PARTNER}
    with worker_process(
        session_env, tmp_path / "password-worker.log", "--pool=threads", "--concurrency=2"
    ) as second:
        second.wait_ready()
        yield second


@pytest.mark.parametrize("extra_env", [PARTNER], ids=["partner_keys"])
def test_a_worker_whose_password_was_changed_harms_no_healthy_worker(
    worker: Celery,
    password_worker: WorkerProcess,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    # Given two workers of one account: this one with partner keys, the other with the password
    first = batch(10, name="before")
    producer.enqueue_many(first)
    outcomes.wait(10, timeout=30)

    # When the password is changed (and its sessions end), and more work arrives
    fake.change_password(DEMO_USERNAME, DEMO_PASSWORD + "-rotated")
    fake.invalidate_sessions()
    second = batch(30, name="after")
    producer.enqueue_many(second)

    # Then the healthy worker syncs everything: no task is dead-lettered as auth
    counts = outcomes.wait(40, timeout=60)
    assert counts["synced"] == 40, counts
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert_each_synced_once(fake, first + second)
    # And the refused worker gave its tasks back, raised the alarm and stepped aside
    output = password_worker.output()
    assert "requeued: this worker's credentials are refused" in output
    assert "ALARM" in output
    wait_for(lambda: "takes no tasks" in password_worker.output(), timeout=10)


def test_ktsync_status_names_a_refused_credential(
    env: dict[str, str], settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a credential marked refused
    RedisCredentialHealth(redis_client, settings.key_prefix, "abc123").refuse("api.tag.index: HTTP 401")

    # Then the status says so, with what KlickTipp answered
    result = ktsync("status", "--ping-timeout", "0", env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    assert "ALARM: KlickTipp refuses the credentials" in result.stdout
    assert "api.tag.index: HTTP 401" in result.stdout
