"""A worker that dies loses nothing and duplicates nothing, and what it held comes back in seconds.

Real ``ktsync worker`` processes consume from a real Redis and call the fake KlickTipp over loopback;
the fake is slowed down so that work is in progress when the kill comes. Everything runs at the
default ``worker.visibility_timeout`` (an hour) and ``sync.lock_lease`` (two minutes): only crash
recovery — heartbeats, and a live worker reclaiming a dead one's tasks, locks and limiter slots —
can bring a killed worker's tasks and contacts back within the bounds below.

Delivery is at-least-once (``acks_late``, ``task_reject_on_worker_lost``, prefetch 1); a task that
runs again after a crash is harmless because every KlickTipp call is idempotent (add-or-update by
e-mail, tags as a desired state) and events of one contact never interleave (a leased lock). So
"exactly once in effect": every contact exists once in KlickTipp, with its tags, and nothing is
dead-lettered.

A whole worker killed mid-batch is killed while its pool children are all busy, so its consumer has
no BRPOP outstanding: a message Redis hands to a consumer in the instant the consumer dies, before
the consumer has recorded it as unacknowledged, is lost with the process (the limit kombu's BRPOP
leaves; README "Crash safety"). Seen twice in CI runs of this test before it waited for busy children.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.producers import Producer
from ktsync.worker.locks import session_locks_key, token_pid
from ktsync.worker.recovery import live_sessions, read_recovery
from tests.integration.fault_helpers import (
    WorkerProcess,
    all_done,
    assert_each_synced_once,
    batch,
    finished_since,
    in_flight,
    reasons,
    tune,
    worker_process,
)
from tests.integration.sync_helpers import SOURCE, T0, Outcomes, Stores, upsert, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # workers killed and reclaimed: 8-30 s each

BATCH = 40
LATENCY_MS = 60  # a contact takes two or three calls: ~150 ms of KlickTipp time each
LOST_JOB = "Worker exited prematurely"  # Celery's WorkerLostError: a pool child died during a task
# The goal is 30 s from a kill to everything it held running again (heartbeat timeout 10 s, then one
# reclaimer pass); the bound leaves room for a slow machine.
RECOVERY_BOUND = 60.0


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    # Only the retry backoffs are tuned (a LockBusy or a transient failure retries quickly); the
    # visibility timeout, the lock lease and the heartbeat settings are the defaults.
    tune(Path(env["KTSYNC_CONFIG"]), retry={"max_attempts": 30, "min_backoff": 0.05, "max_backoff": 0.5})
    return env


def contact_lock(settings: Settings, crm_contact_id: str) -> str:
    return f"{settings.key_prefix}:lock:contact:{SOURCE}:{crm_contact_id}"


def applied_at(stores: Stores, crm_contact_id: str) -> float | None:
    """``occurred_at`` of the last change applied to the contact (None before the first)."""
    state = stores.state.get(SOURCE, crm_contact_id)
    return state.occurred_at if state is not None else None


def test_a_worker_killed_mid_batch_has_its_tasks_run_again_within_seconds_once_another_worker_runs(
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
        # (both pool children busy, so its consumer waits for no message: see the module's docstring)
        wait_for(lambda: outcomes.snapshot()["synced"] >= 8 and len(in_flight(redis_client, settings)) == 2,
                 timeout=30)  # fmt: skip

        # When the whole worker (main process and pool children) is killed at once
        first.kill()
    killed_at = time.time()
    held = in_flight(redis_client, settings)
    assert outcomes.finished() < BATCH, "the batch ended before the kill"
    assert held, "nothing was in flight when the worker died"

    # And a new worker starts
    with worker_process(env, tmp_path / "second.log", "--pool=prefork", "--concurrency=2"):
        # Then every task the dead worker held runs again, long before the visibility timeout
        wait_for(
            lambda: all(finished_since(redis_client, settings, t.crm_contact_id, killed_at) for t in held),
            timeout=RECOVERY_BOUND,
        )
        wait_for(lambda: all_done(redis_client, settings, outcomes, BATCH), timeout=RECOVERY_BOUND)

    # And every contact is in KlickTipp exactly once, with its tags, and nothing is dead-lettered
    assert_each_synced_once(fake, messages)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    # (a task killed after its last KlickTipp call runs again, to the same effect: synced or unchanged)
    counts = outcomes.snapshot()
    assert counts["synced"] + counts["unchanged"] >= BATCH, counts
    # And the reclaim is on record: one dead worker, its tasks back on their queue
    recovery = read_recovery(redis_client, settings.key_prefix)
    assert recovery["dead_workers"] == 1, recovery
    assert recovery["reclaimed_tasks"] >= len(held), (recovery, held)


def test_a_contact_lock_held_by_a_killed_worker_is_released_within_seconds(
    env: dict[str, str],
    settings: Settings,
    fake: FakeControl,
    producer: Producer,
    stores: Stores,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given a worker in the middle of syncing a contact (slow KlickTipp: it holds the contact's lock)
    fake.faults(latency_ms=1500)
    with worker_process(env, tmp_path / "first.log", "--pool=threads", "--concurrency=1") as first:
        producer.enqueue(upsert("L1", "l1@faults.example", at=T0, firstname="Old", lifecyclestage="lead"))
        lock = contact_lock(settings, "L1")
        wait_for(lambda: redis_client.exists(lock), timeout=30)
        (session,) = live_sessions(redis_client, settings.key_prefix)
        registry = session_locks_key(settings.key_prefix, session["id"])
        assert redis_client.hget(registry, lock) == redis_client.get(lock)  # registered with its session

        # When the worker is killed, a newer change of that contact comes in, and another worker runs
        first.kill()
    assert redis_client.exists(lock), "the lock should still be held when the worker dies"
    fake.faults(latency_ms=0)
    producer.enqueue(upsert("L1", "l1@faults.example", at=T0 + 60, firstname="New", lifecyclestage="lead"))
    with worker_process(env, tmp_path / "second.log", "--pool=threads", "--concurrency=2"):
        # Then the contact is free long before its lease ends, and the newer change is applied
        wait_for(lambda: applied_at(stores, "L1") == T0 + 60, timeout=RECOVERY_BOUND)

    contacts = [c for c in fake.state()["contacts"] if c["email"] == "l1@faults.example"]
    assert len(contacts) == 1, contacts
    assert contacts[0]["fields"].get("fieldFirstName") == "New", contacts[0]["fields"]
    assert contacts[0]["fields"].get(CRM_CONTACT_ID_FIELD) == "L1"
    assert not redis_client.exists(lock)
    assert read_recovery(redis_client, settings.key_prefix)["released_locks"] >= 1
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)


def test_a_healthy_workers_long_task_is_not_reclaimed(
    env: dict[str, str],
    settings: Settings,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given two healthy workers whose reclaimers are past their start-up grace (a heartbeat timeout)
    timeout = settings.worker.heartbeat_timeout
    with (
        worker_process(env, tmp_path / "a.log", "--pool=threads", "--concurrency=1") as a,
        worker_process(env, tmp_path / "b.log", "--pool=threads", "--concurrency=1") as b,
    ):
        a.wait_ready()
        b.wait_ready()
        workers = wait_for(lambda: len(live_sessions(redis_client, settings.key_prefix)) == 2 and
                           live_sessions(redis_client, settings.key_prefix))  # fmt: skip
        wait_for(lambda: time.time() > max(w["started"] for w in workers) + timeout + 1, timeout=2 * timeout)
        # And a KlickTipp so slow that one task (two calls) outlasts the heartbeat timeout by far
        fake.faults(latency_ms=int(timeout * 800))

        # When one task runs that long
        started = time.monotonic()
        producer.enqueue(upsert("H1", "h1@faults.example", lifecyclestage="lead"))
        wait_for(lambda: in_flight(redis_client, settings), timeout=10)
        held = wait_for(lambda: sum(w["held"] for w in live_sessions(redis_client, settings.key_prefix)))
        outcomes.wait(1, timeout=120)
        took = time.monotonic() - started
        fake.faults(latency_ms=0)  # the workers log out when they stop

    # Then it ran once: the heartbeat kept it held, no reclaimer put it back
    assert took > 1.5 * timeout, f"the task took {took:.1f}s, not long enough to prove anything"
    assert held == 1
    assert outcomes.snapshot()["synced"] == 1
    assert read_recovery(redis_client, settings.key_prefix)["reclaimed_tasks"] == 0
    assert len([c for c in fake.state()["contacts"] if c["email"] == "h1@faults.example"]) == 1


def test_a_task_taken_by_a_consumer_that_never_registered_and_vanished_runs_within_seconds(
    env: dict[str, str],
    settings: Settings,
    app: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given a message delivered to a consumer that has no heartbeat (an older ktsync, another tool)
    # and that vanished without acknowledging or restoring it
    (message,) = batch(1, name="orphan")
    producer.enqueue(message)
    with app.connection_for_write() as connection:
        channel = connection.channel()
        assert channel.basic_get(settings.worker.lane_queue(Lane.LIVE), no_ack=False) is not None
        channel.qos.restore_at_shutdown = False  # it died: nothing goes back on close
        channel.close()
    assert len(in_flight(redis_client, settings)) == 1

    # When a ktsync worker runs
    with worker_process(env, tmp_path / "worker.log", "--pool=threads", "--concurrency=2"):
        # Then the orphan is found held by nobody, put back and synced
        outcomes.wait(1, timeout=RECOVERY_BOUND)

    assert_each_synced_once(fake, [message])
    assert read_recovery(redis_client, settings.key_prefix)["orphaned_tasks"] == 1


def kill_a_pool_child_holding_a_lock(worker: WorkerProcess, client: Any, settings: Settings) -> str:
    """SIGKILL a pool child while it holds a contact lock (its pid is in the lock's token); the lock."""
    (session,) = live_sessions(client, settings.key_prefix)
    registry = session_locks_key(settings.key_prefix, session["id"])
    for _ in range(20):
        held = {k.decode(): v.decode() for k, v in client.hgetall(registry).items() if b":lock:contact:" in k}
        children = set(worker.children())
        for lock, token in held.items():
            pid = token_pid(token)
            if pid in children:
                os.kill(pid, signal.SIGKILL)
                if client.get(lock) == token.encode():  # it died holding it
                    wait_for(lambda: LOST_JOB in worker.output(), timeout=5)
                    return lock
        time.sleep(0.05)
    pytest.fail(f"no pool child was caught holding a lock:\n{worker.output()}")


def test_a_pool_child_killed_mid_task_has_its_task_requeued_and_its_locks_released_at_once(
    env: dict[str, str],
    settings: Settings,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    # Given a prefork worker in the middle of a batch
    fake.faults(latency_ms=LATENCY_MS)
    messages = batch(BATCH)
    with worker_process(env, tmp_path / "worker.log", "--pool=prefork", "--concurrency=2") as worker:
        producer.enqueue_many(messages)
        wait_for(lambda: outcomes.snapshot()["synced"] >= 5, timeout=30)

        # When a pool child is killed while it runs a task, holding its contact's lock
        lock = kill_a_pool_child_holding_a_lock(worker, redis_client, settings)

        # Then the main process requeues that task at once (task_reject_on_worker_lost) and gives back
        # the dead child's locks at its next heartbeat, and the batch completes with the surviving
        # main process and a fresh pool child
        wait_for(lambda: all_done(redis_client, settings, outcomes, BATCH), timeout=RECOVERY_BOUND)

    # And every contact is in KlickTipp exactly once, with its tags; nothing is dead-lettered
    assert_each_synced_once(fake, messages)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    counts = outcomes.snapshot()
    assert BATCH <= counts["synced"] + counts["unchanged"] <= BATCH + 1, counts
    # And the lock the child died with was released by the main process, not by its lease
    assert not redis_client.exists(lock)
    assert read_recovery(redis_client, settings.key_prefix)["released_locks"] >= 1
