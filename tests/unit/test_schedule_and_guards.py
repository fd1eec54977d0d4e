"""The delayed-retry schedule and the loop breakers: one test body for Redis and the in-memory twin."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from worker.guards import Guards, MemoryGuards, RedisGuards
from worker.locks import MemoryLocks
from worker.schedule import MemorySchedule, Parked, RedisSchedule, Schedule, ScheduleMover, move_due


@pytest.fixture(params=["memory", "redis"])
def schedule(request: pytest.FixtureRequest, namespace: str) -> Schedule:
    if request.param == "memory":
        return MemorySchedule()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisSchedule(client, namespace)


@pytest.fixture(params=["memory", "redis"])
def guards(request: pytest.FixtureRequest, namespace: str) -> Guards:
    if request.param == "memory":
        return MemoryGuards()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisGuards(client, namespace)


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
        ScheduleMover(schedule, locks, published.append),
        ScheduleMover(schedule, locks, published.append),
    )
    token = locks.acquire("schedule-mover", lease=30)  # another worker's mover holds the lock
    assert first.tick() == 0
    assert token is not None
    locks.release("schedule-mover", token)
    assert second.tick() == 1
    assert published == [parked(1)]


def test_deliveries_are_counted_until_an_attempt_finishes(guards: Guards) -> None:
    assert [guards.delivered("t1") for _ in range(3)] == [1, 2, 3]
    guards.finished("t1")
    assert guards.delivered("t1") == 1
    assert guards.delivered("t2") == 1


def test_the_auth_breaker_opens_for_its_time(guards: Guards) -> None:
    assert not guards.auth_breaker_open()
    guards.open_auth_breaker(30)
    assert guards.auth_breaker_open()
