"""The dead-letter store and the outcome counters: one test body for the Redis store and its twin."""

from __future__ import annotations

import pytest
import redis

from ktsync.worker.deadletter import (
    Bounds,
    DeadLetter,
    DeadLetterStore,
    Filter,
    MemoryDeadLetterStore,
    RedisDeadLetterStore,
)
from ktsync.worker.deadletter.triage import group
from ktsync.worker.stats import MemoryStats, RedisStats, Stats

NOW = 1_800_000_000.0
BOUNDS = Bounds(max_entries=5, max_age=3600)


@pytest.fixture(params=["memory", "redis"])
def dead_letters(request: pytest.FixtureRequest, namespace: str) -> DeadLetterStore:
    if request.param == "memory":
        return MemoryDeadLetterStore(BOUNDS, clock=lambda: NOW)
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisDeadLetterStore(client, namespace, BOUNDS, clock=lambda: NOW)


@pytest.fixture(params=["memory", "redis"])
def stats(request: pytest.FixtureRequest, namespace: str) -> Stats:
    if request.param == "memory":
        return MemoryStats()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisStats(client, namespace)


def letter(
    letter_id: str, at: float, *, reason: str = "validation", code: int | None = 8, source: str = "hubspot"
) -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        message={"v": 1, "type": "contact.upsert", "crm_contact_id": letter_id},
        task="ktsync.sync_contact",
        reason=reason,
        error={"error": code, "field": "Lead Value"} if code is not None else {"message": "boom"},
        attempts=1,
        first_failed_at=NOW - 1000 + at,
        last_failed_at=NOW - 1000 + at,
        source=source,
    )


def test_dead_letters_keep_payload_and_reason_and_list_newest_first(dead_letters: DeadLetterStore) -> None:
    # Given three failures at different times
    for letter_id, at in [("a", 10.0), ("b", 30.0), ("c", 20.0)]:
        dead_letters.add(letter(letter_id, at))

    # Then they come back whole, newest first
    assert [d.id for d in dead_letters.list()] == ["b", "c", "a"]
    assert dead_letters.get("a") == letter("a", 10.0)
    assert dead_letters.count() == 3


def test_filters_by_reason_code_source_and_time(dead_letters: DeadLetterStore) -> None:
    dead_letters.add(letter("v", 10.0))
    dead_letters.add(letter("c", 20.0, reason="conflict", code=507))
    dead_letters.add(letter("z", 30.0, reason="mapping", code=None, source="zoho"))
    assert [d.id for d in dead_letters.list(Filter(reason="conflict"))] == ["c"]
    assert [d.id for d in dead_letters.list(Filter(code=8))] == ["v"]
    assert [d.id for d in dead_letters.list(Filter(source="zoho"))] == ["z"]
    assert [d.id for d in dead_letters.list(Filter(since=NOW - 1000 + 15))] == ["z", "c"]
    assert [d.id for d in dead_letters.list(limit=1)] == ["z"]


def test_a_letter_that_fails_again_keeps_its_history(dead_letters: DeadLetterStore) -> None:
    dead_letters.add(letter("a", 10.0))
    dead_letters.note_replay("a")
    dead_letters.add(letter("a", 50.0, reason="conflict", code=507))
    again = dead_letters.get("a")
    assert again is not None
    assert (again.reason, again.code, again.replays, again.attempts) == ("conflict", 507, 1, 2)
    assert again.first_failed_at == NOW - 1000 + 10.0
    assert dead_letters.count() == 1


def test_the_size_cap_and_the_age_limit_evict_and_count(dead_letters: DeadLetterStore) -> None:
    dead_letters.add(letter("ancient", -5000.0))  # older than max_age: evicted at once
    for i in range(7):
        dead_letters.add(letter(f"n{i}", float(i)))
    assert dead_letters.count() == 5
    assert [d.id for d in dead_letters.list()] == ["n6", "n5", "n4", "n3", "n2"]
    assert dead_letters.evicted() == 3


def test_triage_groups_by_reason_and_code_with_meaning_and_fix() -> None:
    groups = group([letter("a", 1), letter("b", 2), letter("c", 3, reason="conflict", code=507)])
    assert [(g.reason, g.code, g.count) for g in groups] == [("validation", 8, 2), ("conflict", 507, 1)]
    assert "Field validation failed" in groups[0].meaning
    assert "Email address exists" in groups[1].meaning
    assert "merge" in groups[1].fix


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
