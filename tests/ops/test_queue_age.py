"""Queue ages for every producer: first-seen checkpoints in Redis and in the in-memory twin, one body for both."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from celery import Celery

from ktsync.config.settings import Settings
from ktsync.core.broker import ENQUEUED_AT_HEADER, sub_queue
from ktsync.core.queue_age import (
    MAX_CHECKPOINTS,
    TAIL_SAMPLE,
    AgeBook,
    Checkpoint,
    QueueAge,
    Sampled,
    describe_age,
    sample_queues,
    thin,
)
from ktsync.core.queue_age_store import MemoryAgeBook, RedisAgeBook, age_key
from ktsync.worker.celery_app import create_app
from ktsync.worker.queue_age_step import QueueWatch
from tests.ops.conftest import ktsync

QUEUE = "q.live"
WAIT = 0.25  # seconds between samples in the shared body (real time on Redis, a fake clock in the twin)
SLACK = 0.001  # the Redis server's TIME is in whole microseconds


def message(*, stamped: float | None = None, compact: bool = False) -> bytes:
    """A kombu message as another producer sends it (no ktsync header unless ``stamped``)."""
    tag = str(uuid.uuid4())
    headers: dict[str, Any] = {"lang": "py", "task": "ktsync.sync_contact", "id": tag}
    if stamped is not None:
        headers[ENQUEUED_AT_HEADER] = stamped
    body = {"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json", "headers": headers,
            "properties": {"body_encoding": "base64", "delivery_tag": tag, "delivery_mode": 2}}  # fmt: skip
    # celery-node writes JSON.stringify's compact form: the Lua scan must read both
    return json.dumps(body, separators=(",", ":") if compact else None).encode()


@dataclass
class Broker:
    """One backend behind the same verbs: push (LPUSH), pop (RPOP), sample, wait."""

    book: AgeBook
    push_raw: Callable[[str, bytes], None]
    pop_raw: Callable[[str], bytes | None]
    wait: Callable[[float], None]
    clock: Callable[[], float]
    checkpoints: Callable[[], int]

    def push(self, raw: bytes, step: int = 0) -> None:
        self.push_raw(sub_queue(QUEUE, step), raw)

    def pop(self) -> bytes | None:
        return self.pop_raw(QUEUE)

    def sample(self, *, scan: bool = True) -> Sampled:
        return sample_queues(self.book, [QUEUE], local_now=self.clock(), scan=scan)[QUEUE]


@pytest.fixture(params=["redis", "memory"])
def broker(request: pytest.FixtureRequest, namespace: str) -> Iterator[Broker]:
    if request.param == "memory":
        now = [1_800_000_000.0]
        twin = MemoryAgeBook(clock=lambda: now[0])

        def advance(seconds: float) -> None:
            now[0] += seconds

        yield Broker(twin, twin.push, twin.pop, advance, lambda: now[0],
                     lambda: len(twin.checkpoints.get(QUEUE, {})))  # fmt: skip
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix = f"{namespace}:"
    yield Broker(RedisAgeBook(client, namespace, prefix), lambda name, raw: client.lpush(prefix + name, raw),
                 lambda name: client.rpop(prefix + name), time.sleep, time.time,
                 lambda: int(client.zcard(age_key(namespace, QUEUE))))  # fmt: skip


def test_a_message_no_producer_stamped_is_at_least_as_old_as_it_was_first_seen(broker: Broker) -> None:
    # Given a message from another producer (no ktsync_enqueued_at)
    broker.push(message())

    # When sampled, Then its age is known at once, as a lower bound
    first = broker.sample()
    assert first.pending == 1
    assert first.age is not None
    assert first.age.source == "first_seen"
    assert first.age.seconds <= 1

    # And it grows with the time it keeps waiting
    broker.wait(WAIT)
    later = broker.sample().age
    assert later is not None
    assert not later.exact
    assert WAIT - SLACK <= later.seconds <= WAIT + 5


def test_a_message_that_waited_behind_a_backlog_gets_the_time_it_waited(broker: Broker) -> None:
    # Given one message at the front, then (after a while) more behind it than the tail sample holds
    broker.push(message())
    broker.sample()
    broker.wait(WAIT)
    pushed_at = broker.clock()
    for _ in range(3 * TAIL_SAMPLE):
        broker.push(message(compact=True))
    broker.sample()  # sees the newest one at the head
    broker.wait(WAIT)

    # When the front one is consumed and the queue is read again
    assert broker.pop() is not None
    age = broker.sample().age

    # Then the new front message is as old as the time since the backlog was seen (not 0 s "at the
    # front"), and never older than it really is
    assert age is not None
    assert age.source == "first_seen"
    assert WAIT - SLACK <= age.seconds <= broker.clock() - pushed_at + 1


def test_a_stamped_message_at_the_tail_gives_its_exact_age(broker: Broker) -> None:
    broker.push(message(stamped=broker.clock() - 30))
    broker.push(message())

    age = broker.sample().age
    assert age is not None
    assert age.exact
    assert age.source == "enqueued_at"
    assert 30 <= age.seconds <= 35


def test_the_oldest_of_every_priority_list_counts_and_a_mixed_queue_is_a_lower_bound(broker: Broker) -> None:
    # Given a stamped message in the queue's own list and a foreign one on priority list 9, stamped too
    # but only behind an unstamped one
    broker.push(message(stamped=broker.clock() - 5))
    broker.push(message(), step=9)
    broker.push(message(stamped=broker.clock() - 40), step=9)

    sampled = broker.sample()
    assert sampled.pending == 3
    assert sampled.age is not None
    assert not sampled.age.exact
    assert 40 <= sampled.age.seconds <= 45  # the priority list's newer stamp bounds its tail


def test_an_empty_queue_is_0_seconds_old_and_keeps_no_checkpoints(broker: Broker) -> None:
    broker.push(message())
    broker.sample()
    assert broker.checkpoints() >= 1

    assert broker.pop() is not None
    assert broker.sample() == Sampled(0, QueueAge(0.0, exact=True))
    assert broker.checkpoints() == 0


def test_the_checkpoints_stay_bounded_however_long_the_backlog(broker: Broker) -> None:
    # Given a queue that only grows, sampled (by workers: no scans) after every new message
    for _ in range(3 * MAX_CHECKPOINTS):
        broker.push(message())
        broker.sample(scan=False)
        broker.wait(0.01)

    # Then its key holds at most MAX_CHECKPOINTS per list
    assert broker.checkpoints() <= MAX_CHECKPOINTS
    # And a reader still finds the oldest message's bound
    age = broker.sample().age
    assert age is not None
    assert age.seconds > 0


def test_the_redis_key_holds_only_delivery_tags_and_the_redis_servers_time(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given a foreign message carrying personal data
    raw = message().replace(b"W10=", b"YWxleEBzaG9wLmV4YW1wbGU=")  # base64 of an e-mail address
    redis_client.lpush(f"{namespace}:{QUEUE}", raw)

    # When sampled
    sample_queues(RedisAgeBook(redis_client, namespace, f"{namespace}:"), [QUEUE], local_now=time.time())

    # Then the checkpoint is "step:tag" with the server's clock: no content is copied
    ((member, score),) = redis_client.zrange(age_key(namespace, QUEUE), 0, -1, withscores=True)
    tag = json.loads(raw)["properties"]["delivery_tag"]
    assert member.decode() == f"0:{tag}"
    seconds, micros = redis_client.time()
    assert abs(seconds + micros / 1e6 - score) < 5
    assert 0 < redis_client.ttl(age_key(namespace, QUEUE)) <= 86_400


def test_reading_without_the_key_prefix_writes_nothing(redis_client: redis.Redis, namespace: str) -> None:
    redis_client.lpush(f"{namespace}:{QUEUE}", message())

    sampled = sample_queues(RedisAgeBook(redis_client, None, f"{namespace}:"), [QUEUE], local_now=time.time(),
                            recording=False)  # fmt: skip

    assert sampled[QUEUE] == Sampled(1, None)  # only headers tell, and there is none
    assert redis_client.exists(age_key(namespace, QUEUE)) == 0


def test_the_bound_is_never_above_the_true_age_and_exact_to_the_sampling_interval() -> None:
    # Given a FIFO queue under a random load, sampled once a second (fake clock, the in-memory twin)
    now, rng = [1_000.0], random.Random(9)
    twin = MemoryAgeBook(clock=lambda: now[0])
    pushed: dict[bytes, float] = {}
    for _ in range(2_000):
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            raw = message()
            pushed[raw] = now[0]
            twin.push(QUEUE, raw)
        for _ in range(rng.choice([0, 1, 2, 2, 3])):
            twin.pop(QUEUE)
        now[0] += 1.0
        age = sample_queues(twin, [QUEUE], local_now=now[0], scan=rng.random() < 0.5)[QUEUE].age
        if not twin.lists.get(QUEUE):
            continue
        # When the oldest message is compared with the truth
        true_age = now[0] - pushed[twin.lists[QUEUE][-1]]
        # Then the bound never exceeds it, and (short of thinning) misses it by one interval at most
        assert age is not None
        assert age.seconds <= true_age + 1e-9
        if true_age < MAX_CHECKPOINTS - 2:
            assert age.seconds >= true_age - 1.0 - 1e-9
        assert len(twin.checkpoints.get(QUEUE, {})) <= MAX_CHECKPOINTS


@pytest.mark.parametrize(
    ("seen", "cap", "kept"),
    [
        ([0, 1, 2, 3], 4, [0, 1, 2, 3]),  # within the cap: nothing goes
        ([0, 1, 2, 10], 3, [0, 2, 10]),  # the one whose neighbours are closest goes
        ([0, 1, 2, 3, 4, 5, 6], 4, [0, 2, 4, 6]),  # evenly thinned, first and last kept
    ],
)
def test_thinning_keeps_the_first_and_the_last_and_even_gaps(
    seen: list[int], cap: int, kept: list[int]
) -> None:
    checkpoints = [Checkpoint(0, f"t{s}", float(s)) for s in seen]
    dropped = thin(checkpoints, cap)
    assert [int(c.seen) for c in checkpoints if c not in dropped] == kept


@pytest.mark.parametrize(
    ("seconds", "source", "text"),
    [(12.4, "enqueued_at", "12s"), (12.4, "first_seen", "at least 12s, first seen"), (None, None, "unknown")],
)
def test_status_says_how_an_age_is_known(seconds: float | None, source: str | None, text: str) -> None:
    assert describe_age(seconds, source) == text


def test_the_workers_queue_watch_records_checkpoints(redis_client: redis.Redis, settings: Settings) -> None:
    # Given a foreign message on the live queue (under the deployment's broker prefix)
    live = settings.worker.consumed_queues[0]
    redis_client.lpush(settings.broker_prefix + live, message())

    # When a worker's watch ticks
    QueueWatch(redis_client, settings).tick()

    # Then the queue has its checkpoint, so a later status knows how long the message waited
    assert redis_client.zcard(age_key(settings.key_prefix, live)) == 1


def test_every_worker_runs_the_queue_watch(settings: Settings, env: dict[str, str]) -> None:
    app = create_app(settings, env)
    assert "QueueAgeStep" in {step.__name__ for step in app.steps["consumer"]}


@pytest.mark.slow
def test_status_shows_a_foreign_messages_age_as_at_least_the_time_since_first_seen(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str]
) -> None:
    # Given a plain Celery producer (no ktsync installed) that follows the prefix rule
    producer = Celery("other-team", broker=settings.redis_url, set_as_current=False)
    producer.conf.broker_transport_options = {"global_keyprefix": settings.broker_prefix}
    live = settings.worker.consumed_queues[0]
    producer.send_task("ktsync.sync_contact", args=[{"v": 1}], queue=live)
    producer.close()

    # When status is asked twice, a while apart
    first = _status(env)
    time.sleep(1.0)
    second = _status(env)

    # Then the message has an age both times, marked as first seen, and it grew
    for report in (first, second):
        queue = report["queues"][0]
        assert (queue["queue"], queue["pending"], queue["oldest_pending_age_source"]) == (
            live,
            1,
            "first_seen",
        )
    assert second["queues"][0]["oldest_pending_age"] >= 1.0
    assert second["queue"]["oldest_pending_age_source"] == "first_seen"
    text = ktsync("status", "--ping-timeout", "0", env=env).stdout
    assert f"queue {live}: pending 1 (oldest at least " in text
    assert ", first seen)" in text


def _status(env: dict[str, str]) -> dict[str, Any]:
    result = ktsync("status", "--json", "--ping-timeout", "0", env=env)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.slow
def test_a_failing_sample_does_not_stop_the_watch(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    # The watch runs on a Ticker: a Redis outage is logged, and the next tick tries again
    from ktsync.worker.ticker import Ticker

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    ticker = Ticker("ktsync-queue-age-test", QueueWatch(dead, settings).tick, 0.05)
    with caplog.at_level(logging.WARNING):
        ticker.start()
        time.sleep(0.3)
        ticker.stop()
    assert any("ktsync-queue-age-test" in r.getMessage() for r in caplog.records)
