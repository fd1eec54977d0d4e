"""The dead-letter store and the outcome counters: one test body for the Redis store and its twin."""

from __future__ import annotations

import pytest
import redis

from worker.deadletter import DeadLetter, DeadLetterStore, MemoryDeadLetterStore, RedisDeadLetterStore
from worker.stats import MemoryStats, RedisStats, Stats


@pytest.fixture(params=["memory", "redis"])
def dead_letters(request: pytest.FixtureRequest, namespace: str) -> DeadLetterStore:
    if request.param == "memory":
        return MemoryDeadLetterStore()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisDeadLetterStore(client, namespace)


@pytest.fixture(params=["memory", "redis"])
def stats(request: pytest.FixtureRequest, namespace: str) -> Stats:
    if request.param == "memory":
        return MemoryStats()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisStats(client, namespace)


def letter(letter_id: str, at: float) -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        message={"v": 1, "type": "contact.upsert", "crm_contact_id": letter_id},
        task="ktsync.sync_contact",
        reason="validation",
        error={"error": 8, "field": "Lead Value"},
        attempts=1,
        first_failed_at=at,
        last_failed_at=at,
        source="hubspot",
    )


def test_dead_letters_keep_payload_and_reason_and_list_newest_first(dead_letters: DeadLetterStore) -> None:
    # Given three failures at different times
    for letter_id, at in [("a", 10.0), ("b", 30.0), ("c", 20.0)]:
        dead_letters.add(letter(letter_id, at))

    # Then they come back whole, newest first
    assert [d.id for d in dead_letters.list()] == ["b", "c", "a"]
    assert dead_letters.get("a") == letter("a", 10.0)
    assert dead_letters.count() == 3


def test_removing_a_dead_letter(dead_letters: DeadLetterStore) -> None:
    dead_letters.add(letter("a", 1.0))
    assert dead_letters.remove("a") is True
    assert dead_letters.remove("a") is False
    assert dead_letters.get("a") is None
    assert dead_letters.list() == []


def test_counters_add_up(stats: Stats) -> None:
    for outcome in ["synced", "synced", "dead_lettered"]:
        stats.incr(outcome)
    stats.incr("synced", 3)
    assert stats.snapshot() == {"synced": 5, "dead_lettered": 1}
