"""The delayed-retry schedule and the loop breakers: one test body for Redis and the in-memory twin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from ktsync.worker.credentials import MemoryCredentialHealth, RedisCredentialHealth
from ktsync.worker.guards import Guards, MemoryGuards, RedisGuards
from ktsync.worker.locks import MemoryLocks
from ktsync.worker.schedule import (
    MemorySchedule,
    Parked,
    RedisSchedule,
    Schedule,
    ScheduleMover,
    move_due,
    parked_step,
)
from tests.unit.twins import twin

schedule = twin(MemorySchedule, RedisSchedule)


@pytest.fixture(params=["memory", "redis"])
def guarded(request: pytest.FixtureRequest, namespace: str) -> tuple[Guards, Callable[[], None]]:
    """Guards, and a way to mark their worker's credential refused."""
    if request.param == "memory":
        health = MemoryCredentialHealth()
        return MemoryGuards(health.refused), lambda: health.refuse("HTTP 401") and None
    client: redis.Redis = request.getfixturevalue("redis_client")
    health = RedisCredentialHealth(client, namespace, "cred1")
    return RedisGuards(client, namespace, credential="cred1"), lambda: health.refuse("HTTP 401") and None


@pytest.fixture
def guards(guarded: tuple[Guards, Callable[[], None]]) -> Guards:
    return guarded[0]


@pytest.fixture
def refusal(guarded: tuple[Guards, Callable[[], None]]) -> Callable[[], None]:
    return guarded[1]


def parked(n: int) -> Parked:
    return Parked("ktsync.sync_contact", ({"crm_contact_id": str(n)},), {"failures": 3}, f"task-{n}")


def test_only_due_entries_are_moved_and_each_once(schedule: Schedule) -> None:
    # Given three delayed retries, two of them due
    schedule.park(parked(1), due=100.0)
    schedule.park(parked(2), due=200.0)
    schedule.park(parked(3), due=300.0)
    published: list[Parked] = []

    # When the mover runs at t=250 (twice)
    moved = move_due(schedule, published.append, now=250.0) + move_due(schedule, published.append, now=250.0)

    # Then the due ones went back to the queue as they were parked, once, and the third waits on
    assert moved == 2
    assert published == [parked(1), parked(2)]
    assert schedule.count() == 1


def test_an_entry_whose_publish_fails_stays_parked(schedule: Schedule) -> None:
    schedule.park(parked(1), due=1.0)

    def broker_down(entry: Parked) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        move_due(schedule, broker_down, now=10.0)
    assert schedule.count() == 1


def test_one_mover_at_a_time(schedule: Schedule) -> None:
    locks = MemoryLocks()
    schedule.park(parked(1), due=0.0)
    published: list[Any] = []
    first, second = (
        ScheduleMover(locks, [parked_step(schedule, published.append)]),
        ScheduleMover(locks, [parked_step(schedule, published.append)]),
    )
    token = locks.acquire("schedule-mover", lease=30)  # another worker's mover holds the lock
    assert first.tick() == 0
    assert token is not None
    locks.release("schedule-mover", token)
    assert second.tick() == 1
    assert published == [parked(1)]


def test_a_parked_entry_keeps_its_queue_and_enqueue_time_and_old_entries_still_read() -> None:
    entry = Parked("ktsync.sync_contact", ({"a": 1},), {"failures": 1}, "t1", "ktsync.bulk", 1795341600.5)
    assert Parked.from_json(entry.to_json()) == entry
    written_before_lanes = '{"args": [{"a": 1}], "id": "t1", "kwargs": {}, "task": "ktsync.sync_contact"}'
    old = Parked.from_json(written_before_lanes)
    assert (old.queue, old.enqueued_at) == ("", None)


def test_deliveries_are_counted_until_an_attempt_finishes(guards: Guards) -> None:
    assert [guards.delivered("t1") for _ in range(3)] == [1, 2, 3]
    guards.finished("t1")
    assert guards.delivered("t1") == 1
    assert guards.delivered("t2") == 1


def test_admission_says_when_the_credential_is_refused(guards: Guards, refusal: Callable[[], None]) -> None:
    assert guards.admit("t1") == (1, False)
    refusal()
    assert guards.admit("t1") == (2, True)
