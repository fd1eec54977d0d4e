"""Released work goes to the head of its queue (worker/head.py), against a real Redis list."""

from __future__ import annotations

import redis

from ktsync.worker.head import HeadRelease
from ktsync.worker.schedule import Parked


def entry(name: str) -> Parked:
    return Parked("ktsync.sync_contact", ({"crm_contact_id": name},), id=name, queue="q.bulk")


def test_released_tasks_are_taken_before_the_queued_ones_in_the_order_they_were_released(
    redis_client: redis.Redis, namespace: str
) -> None:
    prefix = f"{namespace}:"
    queue = f"{prefix}q.bulk"
    for waiting in ("w1", "w2", "w3"):  # kombu publishes with LPUSH and consumes with BRPOP
        redis_client.lpush(queue, waiting)

    def publish(parked: Parked) -> None:
        redis_client.lpush(queue, parked.id)

    head = HeadRelease(redis_client, prefix, publish, lambda parked: parked.queue)
    step = head.after(lambda: [head.publish(entry(name)) for name in ("r1", "r2")] and 2)
    assert step() == 2

    taken = [redis_client.rpop(queue) for _ in range(5)]
    assert taken == [b"r1", b"r2", b"w1", b"w2", b"w3"]


def test_a_message_published_in_between_is_moved_instead_and_nothing_is_lost(
    redis_client: redis.Redis, namespace: str
) -> None:
    prefix = f"{namespace}:"
    queue = f"{prefix}q.bulk"

    def publish(parked: Parked) -> None:
        redis_client.lpush(queue, parked.id)
        redis_client.lpush(queue, "another producer's")  # lands between the publish and the move

    head = HeadRelease(redis_client, prefix, publish, lambda parked: parked.queue)
    head.publish(entry("r1"))
    assert head.flush() == 1
    assert sorted(redis_client.lrange(queue, 0, -1)) == [b"another producer's", b"r1"]


def test_an_empty_queue_is_left_alone(redis_client: redis.Redis, namespace: str) -> None:
    prefix = f"{namespace}:"
    head = HeadRelease(redis_client, prefix, lambda _: None, lambda parked: parked.queue)
    head.publish(entry("r1"))
    assert head.flush() == 0
    assert redis_client.llen(f"{prefix}q.bulk") == 0
