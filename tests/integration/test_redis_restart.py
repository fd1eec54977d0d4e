"""Redis restarting under a running worker: the worker reconnects, and nothing acknowledged is lost.

The test owns its Redis (AOF on, fsync on every write, so a restart keeps every write Redis
acknowledged) and restarts it on the same port and directory while a ``ktsync worker`` process is in
the middle of a batch. Contacts enqueued before the restart (acknowledged by Redis), those in flight
during it, and those enqueued after it all end up in KlickTipp, each exactly once — at the default
visibility timeout (an hour) and lock lease: a task whose acknowledgement was lost with the old
connection is held by nobody afterwards, and crash recovery puts it back within seconds; a contact
lock whose release failed while Redis was away is released as soon as it is back.

The first test restarts Redis while the worker's threads are all busy, so its consumer has no BRPOP
outstanding: a message Redis pops for a BRPOP in the instant it shuts down dies with the reply (the
limit kombu's BRPOP leaves, README "Crash safety"). A message the worker has taken as Redis goes
away is kept and put back (``ktsync.worker.transport``; ``test_broker_transport`` shows both repairs
against kombu's own transport step by step).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import redis

from fake_klicktipp.testing import FakeControl
from ktsync.config.settings import Settings, load_settings
from ktsync.producers import Producer
from tests.integration.fault_helpers import (
    OwnedRedis,
    all_done,
    assert_each_synced_once,
    batch,
    in_flight,
    reasons,
    tune,
    worker_process,
)
from tests.integration.sync_helpers import Outcomes, Stores, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # Redis restarted under a worker: seconds each

HALF = 20
# The goal is 30 s from Redis's return to every task running again (the reclaimer's grace after its
# own heartbeat failed, then an orphan's timeout); the bound leaves room for a slow machine.
RECOVERY_BOUND = 60.0


@pytest.fixture
def restart_env(env: dict[str, str], owned_server: OwnedRedis) -> dict[str, str]:
    """The test's config, pointed at the Redis this test owns."""
    tune(
        Path(env["KTSYNC_CONFIG"]),
        redis={"url": owned_server.url, "broker_prefix": ""},
        # Only the retry backoffs are tuned; visibility timeout, lock lease and heartbeats are the defaults.
        retry={"max_attempts": 30, "min_backoff": 0.05, "max_backoff": 0.5},
    )
    return {**env, "KTSYNC_REDIS_URL": owned_server.url}  # wins over a KTSYNC_REDIS_URL the suite runs with


class Owned(NamedTuple):
    settings: Settings
    client: redis.Redis
    outcomes: Outcomes
    stores: Stores


@pytest.fixture
def owned(restart_env: dict[str, str], owned_server: OwnedRedis) -> Iterator[Owned]:
    """The test's settings, a client of the Redis it owns, and what the workers leave in it."""
    settings = load_settings(restart_env)
    client = redis.Redis.from_url(owned_server.url)
    try:
        yield Owned(settings, client, Outcomes(client, settings), Stores(client, settings))
    finally:
        client.close()


def test_a_worker_reconnects_after_redis_restarts_and_every_enqueued_contact_is_synced_once(
    restart_env: dict[str, str], owned_server: OwnedRedis, owned: Owned, fake: FakeControl, tmp_path: Path
) -> None:
    settings, client, outcomes, stores = owned
    first, second = batch(HALF), batch(HALF, start=HALF)
    fake.faults(latency_ms=150)  # slow enough that the restart comes in the middle of the first half
    with worker_process(restart_env, tmp_path / "worker.log", "--pool=threads", "--concurrency=4") as worker:
        worker.wait_ready()
        # Given a worker in the middle of a batch whose every message Redis acknowledged, its four
        # threads busy (so its consumer waits for none: see the module's docstring)
        with Producer(settings) as producer:
            producer.enqueue_many(first)
        wait_for(
            lambda: outcomes.snapshot()["synced"] >= 3 and len(in_flight(client, settings)) == 4, timeout=20
        )

        # When Redis restarts, and more contacts are enqueued afterwards
        owned_server.restart()
        synced_before = outcomes.snapshot()["synced"]
        with Producer(settings) as producer:
            producer.enqueue_many(second)

        # Then the worker reconnects and works through both halves
        wait_for(lambda: all_done(client, settings, outcomes, 2 * HALF), timeout=RECOVERY_BOUND)
        output = worker.output()
    assert synced_before < HALF, "the first half was done before Redis restarted"
    assert "Connection to broker lost" in output  # the restart really happened under the worker
    # And every contact is in KlickTipp exactly once, with its tags; nothing is dead-lettered
    assert_each_synced_once(fake, first + second)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)


def test_tasks_cut_off_by_a_redis_outage_run_again_within_seconds_and_leave_no_lock_behind(
    restart_env: dict[str, str], owned_server: OwnedRedis, owned: Owned, fake: FakeControl, tmp_path: Path
) -> None:
    settings, client, outcomes, stores = owned
    messages = batch(4)
    with worker_process(restart_env, tmp_path / "worker.log", "--pool=threads", "--concurrency=4") as worker:
        worker.wait_ready()
        # Given four tasks in the middle of their KlickTipp calls, each holding its contact's lock
        fake.faults(latency_ms=1500)
        with Producer(settings) as producer:
            producer.enqueue_many(messages)
        wait_for(lambda: len(in_flight(client, settings)) == 4, timeout=20)
        time.sleep(1)

        # When Redis is away for a few seconds: the tasks cannot commit, requeue or release their locks
        owned_server.stop()
        time.sleep(5)
        owned_server.start()
        fake.faults(latency_ms=0)

        # Then they run again within seconds (neither the visibility timeout nor the lock lease is waited
        # for) and every contact is synced once
        wait_for(lambda: all_done(client, settings, outcomes, len(messages)), timeout=RECOVERY_BOUND)
        output = worker.output()
    assert "requeued: Redis unreachable" in output  # the outage really cut the tasks off
    assert_each_synced_once(fake, messages)
    assert stores.dead_letters.count() == 0, reasons(stores.dead_letters)
    assert not list(client.scan_iter(match=f"{settings.key_prefix}:lock:contact:*"))
