"""A worker killed with SIGKILL in the middle of a batch loses nothing and duplicates nothing.

Real ``ktsync worker`` processes (prefork pool) consume from a real Redis and call the fake KlickTipp
over loopback; the fake is slowed down so that a batch is still in progress when the kill comes.
Delivery is at-least-once (``acks_late``, ``task_reject_on_worker_lost``, prefetch 1, unacked tasks
restored after the visibility timeout); a task that runs again after a crash is harmless because
every KlickTipp call is idempotent (add-or-update by e-mail, tags as a desired state) and events of
one contact never interleave (a leased lock). So "exactly once in effect": every contact exists once
in KlickTipp, with its tags, and nothing is dead-lettered.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from fake_klicktipp.testing import FakeControl
from producers import Producer
from tests.integration.fault_helpers import (
    WorkerProcess,
    all_done,
    assert_each_synced_once,
    batch,
    broker_keys,
    reasons,
    tune,
    worker_process,
)
from tests.integration.sync_helpers import Outcomes, Stores, wait_for

pytestmark = pytest.mark.integration

BATCH = 40
LATENCY_MS = 60  # a contact takes two or three calls: ~150 ms of KlickTipp time each
LOST_JOB = "Worker exited prematurely"  # Celery's WorkerLostError: a pool child died during a task


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    tune(
        Path(env["KTSYNC_CONFIG"]),
        # A dead worker's unacked tasks come back after 5 s; the sweep runs every second.
        worker={"visibility_timeout": 5, "restore_interval": 1},
        # A contact lock held by a killed task blocks its contact for at most 5 s.
        sync={"lock_lease": 5},
        # Every broker countdown stays below the visibility timeout (longer ones are parked in Redis).
        retry={"max_attempts": 30, "min_backoff": 0.05, "max_backoff": 0.5, "max_broker_countdown": 2},
    )
    return env


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing_once_a_new_worker_takes_over(
    env: dict[str, str],
    settings: Settings,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given a prefork worker halfway through a batch
    fake.faults(latency_ms=LATENCY_MS)
    messages = batch(BATCH)
    with worker_process(env, tmp_path / "first.log", "--pool=prefork", "--concurrency=2") as first:
        producer.enqueue_many(messages)
        wait_for(lambda: outcomes.snapshot()["synced"] >= 8, timeout=30)

        # When the whole worker (main process and pool children) is killed at once
        first.kill()
    finished_at_kill = outcomes.finished()
    in_flight = redis_client.hlen(broker_keys(settings)[1])
    assert finished_at_kill < BATCH, "the batch ended before the kill"
    assert in_flight >= 1, "nothing was in flight when the worker died"

    # And a new worker starts
    with worker_process(env, tmp_path / "second.log", "--pool=prefork", "--concurrency=2"):
        wait_for(lambda: all_done(redis_client, settings, outcomes, BATCH), timeout=40)

    # Then every contact is in KlickTipp exactly once, with its tags, and nothing is dead-lettered
    assert_each_synced_once(fake, messages)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    # (a task killed after its last KlickTipp call runs again, to the same effect: synced or unchanged)
    counts = outcomes.snapshot()
    assert counts["synced"] + counts["unchanged"] >= BATCH, counts


def kill_a_busy_pool_child(worker: WorkerProcess, attempts: int = 5) -> int:
    """SIGKILL pool children until Celery reports one that died during a task; its pid."""
    for _ in range(attempts):
        child = min(worker.children())
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if LOST_JOB in worker.output():
                return child
            time.sleep(0.05)
    pytest.fail(f"no pool child was busy in {attempts} kills:\n{worker.output()}")


def test_a_pool_child_killed_mid_task_has_its_task_requeued_at_once_and_synced_once(
    env: dict[str, str],
    settings: Settings,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given a visibility timeout of an hour: only an immediate requeue can bring a lost task back in time
    tune(Path(env["KTSYNC_CONFIG"]), worker={"visibility_timeout": 3600})
    # And a prefork worker in the middle of a batch
    fake.faults(latency_ms=LATENCY_MS)
    messages = batch(BATCH)
    with worker_process(env, tmp_path / "worker.log", "--pool=prefork", "--concurrency=2") as worker:
        producer.enqueue_many(messages)
        wait_for(lambda: outcomes.snapshot()["synced"] >= 5, timeout=30)

        # When a pool child is killed while it runs a task
        kill_a_busy_pool_child(worker)

        # Then the main process requeues that task at once (task_reject_on_worker_lost), and the batch
        # completes with the surviving main process and a fresh pool child
        wait_for(lambda: all_done(redis_client, settings, outcomes, BATCH), timeout=30)

    # And every contact is in KlickTipp exactly once, with its tags; nothing is dead-lettered
    assert_each_synced_once(fake, messages)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    counts = outcomes.snapshot()
    assert BATCH <= counts["synced"] + counts["unchanged"] <= BATCH + 1, counts
