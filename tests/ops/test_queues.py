"""The Redis readers behind `status` and `metrics`: kombu's lists, priority sub-queues, unacked, the limiter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from ktsync import queues
from ktsync.core.broker import ENQUEUED_AT_HEADER, PRIORITY_SEPARATOR
from ktsync.queues import (
    QueueStatus,
    dead_letter_counts,
    limiter_status,
    parked_status,
    queue_status,
    queue_statuses,
)
from ktsync.worker.deadletter import RedisDeadLetterStore
from ktsync.worker.ratelimit import Limits, RedisRateLimiter
from ktsync.worker.schedule import Parked, RedisSchedule
from tests.ops.seed import letter

NOW = 1_800_000_000.0


def message(enqueued_at: float | None = None, eta: float | None = None) -> bytes:
    headers: dict[str, Any] = {"task": "ktsync.sync_contact", "id": "t"}
    if enqueued_at is not None:
        headers[ENQUEUED_AT_HEADER] = enqueued_at
    if eta is not None:
        headers["eta"] = datetime.fromtimestamp(eta, UTC).isoformat()
    return json.dumps({"body": "", "headers": headers, "properties": {}}).encode()


@pytest.fixture
def broker(namespace: str) -> str:
    return f"{namespace}:"


def test_the_oldest_pending_message_is_found_at_the_tail_of_every_priority_list(
    redis_client: redis.Redis, broker: str
) -> None:
    # Given kombu's lists (LPUSH: newest at the head) for the queue and its priority step 9
    redis_client.lpush(f"{broker}q", message(NOW - 30), message(NOW - 10))
    redis_client.lpush(f"{broker}q{PRIORITY_SEPARATOR}9", message(NOW - 90), message(NOW - 5))

    # When read, Then all four are pending and the oldest is 90 s old, whichever list holds it
    status = queue_status(redis_client, "q", NOW, broker)
    assert (status.pending, status.oldest_pending_age, status.oldest_pending_age_source) == (
        4,
        90,
        "enqueued_at",
    )


def test_a_tail_message_without_the_header_gives_a_lower_bound_or_nothing(
    redis_client: redis.Redis, broker: str
) -> None:
    # Given a replayed message (no header) at the tail, newer stamped ones behind it
    redis_client.lpush(f"{broker}q", message(None), message(NOW - 40), message(NOW - 20))
    # And a queue holding only unstamped messages
    redis_client.lpush(f"{broker}bare", message(None))

    stamped, bare = queue_statuses(redis_client, ["q", "bare"], NOW, broker)
    assert (stamped.oldest_pending_age, stamped.oldest_pending_age_source) == (40, "first_seen")  # at least
    assert (bare.pending, bare.oldest_pending_age) == (1, None)


def test_with_the_key_prefix_an_unstamped_queue_has_a_first_seen_age(
    redis_client: redis.Redis, broker: str, namespace: str
) -> None:
    # Given a queue holding only another producer's message (a delivery tag, no ktsync header)
    raw = json.dumps({"body": "", "headers": {"task": "ktsync.sync_contact", "id": "t"},
                      "properties": {"delivery_tag": "tag-1"}}).encode()  # fmt: skip
    redis_client.lpush(f"{broker}bare", raw)

    # When read as status and metrics do (with the key prefix), Then its age is a first-seen bound
    (bare,) = queue_statuses(redis_client, ["bare"], NOW, broker, key_prefix=namespace)
    assert (bare.pending, bare.oldest_pending_age_source) == (1, "first_seen")
    assert bare.oldest_pending_age is not None
    assert bare.oldest_pending_age >= 0


def test_unacked_messages_are_in_flight_or_scheduled_by_their_eta(
    redis_client: redis.Redis, broker: str
) -> None:
    # Given kombu's unacked hash: a running task, a retry due later, one of another queue
    def unacked(raw: bytes, queue: str) -> bytes:
        return json.dumps([json.loads(raw), "", queue]).encode()

    redis_client.hset(f"{broker}unacked", mapping={
        "a": unacked(message(NOW - 5), "q"),
        "b": unacked(message(NOW - 5, eta=NOW + 30), "q"),
        "c": unacked(message(NOW - 5), "other"),
    })  # fmt: skip

    # When read with two parked retries, Then the queue is busy, not drained
    status = queue_status(redis_client, "q", NOW, broker, parked=2)
    assert status == QueueStatus("q", pending=0, in_flight=1, scheduled=1, parked=2, oldest_pending_age=0.0)
    assert status.to_dict()["drained"] is False


def test_parked_retries_alone_keep_the_queue_from_being_drained(redis_client: redis.Redis) -> None:
    assert QueueStatus("q", 0, 0, 0, parked=1).drained is False
    assert QueueStatus("q", 0, 0, 0).drained is True


def test_parked_status_counts_due_and_future_entries(redis_client: redis.Redis, namespace: str) -> None:
    schedule = RedisSchedule(redis_client, namespace)
    schedule.park(Parked("t", ("a",), {}, "1"), NOW - 1)
    schedule.park(Parked("t", ("b",), {}, "2"), NOW + 60)

    assert parked_status(redis_client, namespace, NOW) == queues.ParkedStatus(2, 1, NOW - 1)


def test_the_limiter_reads_as_the_lua_script_sees_it(redis_client: redis.Redis, namespace: str) -> None:
    # Given an untouched account: full bucket, nothing in flight, no pause
    slow = Limits(rate=0.01, burst=10, max_in_flight=4, lease=3600)
    fresh = limiter_status(redis_client, namespace, "acct", limits=slow)
    assert (fresh.tokens, fresh.in_flight, fresh.paused_for, fresh.paused_until) == (10, 0, 0, None)

    # When two calls take a slot each
    limiter = RedisRateLimiter(redis_client, namespace)
    assert limiter.acquire("acct", slow, "s1").granted
    assert limiter.acquire("acct", slow, "s2").granted

    # Then two tokens are spent and two calls are in flight
    spent = limiter_status(redis_client, namespace, "acct", limits=slow)
    assert 8 <= spent.tokens < 9
    assert (spent.in_flight, spent.rate_factor) == (2, 1.0)

    # And when a 429 pauses the account, the bucket is empty, the rate cut, and the pause shows
    limiter.pause("acct", 120)
    paused = limiter_status(redis_client, namespace, "acct", limits=slow)
    assert (paused.tokens, paused.rate_factor) == (0, 0.7)
    assert 0 < paused.paused_for <= 120
    assert paused.paused_until is not None


def test_dead_letters_are_counted_by_reason_and_code(redis_client: redis.Redis, namespace: str) -> None:
    store = RedisDeadLetterStore(redis_client, namespace)
    for i in range(3):
        store.add(letter(f"v{i}", "validation", 8, NOW))
    store.add(letter("c", "conflict", 507, NOW))
    store.add(letter("u", "unexpected", None, NOW))

    assert dead_letter_counts(redis_client, namespace) == {
        ("validation", 8): 3,
        ("conflict", 507): 1,
        ("unexpected", None): 1,
    }
