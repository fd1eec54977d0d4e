"""Crash recovery: the pure reclaim decisions (tables), and its Redis side against a real Redis.

The Redis tests drive the real scripts: locks and contact claims registered with their session,
a dead session's leftovers taken once and its locks released only where they still hold its token,
heartbeats, releases owed after an outage, and a reclaimer pass over kombu's unacked hash. Only
kombu's own ``restore_by_tag`` is left out here (a recording stand-in): the crash and Redis-restart
integration tests run it with real workers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from ktsync.core.redis_server import free_port
from ktsync.worker.locks import RedisLocks, owner_token, session_locks_key, token_pid
from ktsync.worker.recovery import live_sessions, read_recovery
from ktsync.worker.recovery.decide import (
    Plan,
    SessionView,
    View,
    dead_holders,
    may_judge,
    plan,
    restorable,
    watch_only,
)
from ktsync.worker.recovery.heartbeat import Heartbeat, Pulse
from ktsync.worker.recovery.keys import Keys
from ktsync.worker.recovery.reclaimer import Reclaimer
from ktsync.worker.recovery.store import claim_session, release_held
from ktsync.worker.session import WorkerSession
from ktsync.worker.state import ContactState, RedisStateStore

QUEUES = ("ktsync.live", "ktsync", "ktsync.bulk")
TIMEOUT = 10.0
NOW = 1_000.0


# -- the pure decisions ---------------------------------------------------------------------------


def view(
    *sessions: SessionView, unacked: Sequence[str] = (), first_seen: dict[str, float] | None = None
) -> View:
    return View(NOW, tuple(sessions), frozenset(unacked), first_seen or {})


ALIVE = SessionView("me", alive=True, held=frozenset({"t1"}))
OTHER = SessionView("other", alive=True, held=frozenset({"t2"}))
DEAD = SessionView("dead", alive=False, held=frozenset({"t3", "t4"}))
KTSYNC = {f"t{i}": "ktsync.live" for i in range(10)}


@pytest.mark.parametrize(
    ("the_view", "routes", "expected"),
    [
        pytest.param(view(ALIVE, OTHER, unacked=["t1", "t2"]), KTSYNC, Plan(), id="everything held: nothing to do"),
        pytest.param(view(ALIVE, DEAD, unacked=["t1", "t3"]), KTSYNC, Plan(dead=("dead",)), id="a dead session is reclaimed"),
        pytest.param(view(SessionView("me", alive=False)), KTSYNC, Plan(), id="never judge yourself dead"),
        pytest.param(view(ALIVE, unacked=["t5"]), KTSYNC, Plan(remember={"t5": NOW}), id="an unheld tag is first remembered"),
        pytest.param(view(ALIVE, unacked=["t5"], first_seen={"t5": NOW - 5}), KTSYNC, Plan(), id="unheld for less than the timeout: wait"),
        pytest.param(view(ALIVE, unacked=["t5"], first_seen={"t5": NOW - 11}), KTSYNC, Plan(restore=("t5",), forget=("t5",)), id="unheld for longer: restore and forget"),
        pytest.param(view(ALIVE, unacked=["t1"], first_seen={"t1": NOW - 30}), KTSYNC, Plan(forget=("t1",)), id="held again: forget"),
        pytest.param(view(ALIVE, unacked=[], first_seen={"t6": NOW - 30}), KTSYNC, Plan(forget=("t6",)), id="acked meanwhile: forget"),
        pytest.param(view(ALIVE, unacked=["t7"], first_seen={"t7": NOW - 30}), {"t7": "other-app"}, Plan(forget=("t7",)), id="another app's message: never touched"),
        pytest.param(view(ALIVE, unacked=["t8"]), {}, Plan(), id="no routing key (gone meanwhile): left alone"),
        pytest.param(view(ALIVE, DEAD, unacked=["t3"], first_seen={"t3": NOW - 30}), KTSYNC, Plan(dead=("dead",), forget=("t3",)), id="a dead session's tags go back with the session"),
    ],
)  # fmt: skip
def test_the_reclaim_plan(the_view: View, routes: dict[str, str], expected: Plan) -> None:
    assert plan(the_view, routes, own="me", queues=QUEUES, timeout=TIMEOUT) == expected


@pytest.mark.parametrize(
    ("held", "the_view", "expected"),
    [
        (["t3", "t4"], view(ALIVE, unacked=["t3", "t4"]), ("t3", "t4")),
        (["t3", "t4"], view(ALIVE, unacked=["t3"]), ("t3",)),  # t4 was acked before the worker died
        (["t1", "t3"], view(ALIVE, unacked=["t1", "t3"]), ("t3",)),  # t1 already runs on a live worker
    ],
)
def test_a_dead_sessions_tags_that_go_back(
    held: list[str], the_view: View, expected: tuple[str, ...]
) -> None:
    assert restorable(held, the_view) == expected


@pytest.mark.parametrize(
    ("healthy_since", "now", "expected"),
    [(None, 100.0, False), (95.0, 100.0, False), (90.0, 100.0, True), (10.0, 100.0, True)],
)
def test_only_a_worker_whose_heartbeat_went_through_for_a_timeout_judges_others(
    healthy_since: float | None, now: float, expected: bool
) -> None:
    assert may_judge(healthy_since, now, TIMEOUT) is expected


def test_a_worker_not_yet_judging_keeps_the_orphan_records_but_restores_nothing() -> None:
    decided = Plan(dead=("d",), restore=("t5",), remember={"t6": NOW}, forget=("t5", "t7"))
    assert watch_only(decided) == Plan(remember={"t6": NOW}, forget=("t7",))


def test_the_locks_of_a_dead_pool_process_are_found_by_the_pid_in_their_token() -> None:
    locks = {"k-main": "100.aa", "k-live-child": "101.bb", "k-dead-child": "102.cc", "k-plain": "dd"}
    found = dead_holders(locks, own_pid=100, pid_of=token_pid, alive=lambda pid: pid == 101)
    assert found == {"k-dead-child": "102.cc"}


def test_a_sessions_token_carries_its_process_id_and_a_plain_one_does_not() -> None:
    assert token_pid(owner_token("sid")) == os.getpid()
    assert token_pid(owner_token(None)) is None


# -- the Redis side -------------------------------------------------------------------------------


@pytest.fixture
def keys(namespace: str) -> Keys:
    return Keys(namespace, broker_prefix=f"{namespace}:")


def test_a_sessions_lock_is_registered_with_it_and_forgotten_on_release(
    redis_client: redis.Redis, namespace: str
) -> None:
    locks = RedisLocks(redis_client, namespace, session="s1")
    registry = session_locks_key(namespace, "s1")
    token = locks.acquire("tag:x", lease=10)
    assert token is not None
    assert redis_client.hgetall(registry) == {f"{namespace}:lock:tag:x".encode(): token.encode()}
    assert locks.acquire("tag:x", lease=10) is None
    assert redis_client.hlen(registry) == 1  # a failed acquire registers nothing
    assert locks.release("tag:x", "not-the-owner") is False
    assert locks.release("tag:x", token) is True
    assert redis_client.hlen(registry) == 0


def test_a_lock_without_a_session_registers_nowhere(redis_client: redis.Redis, namespace: str) -> None:
    locks = RedisLocks(redis_client, namespace)
    assert locks.acquire("tag:y", lease=10) is not None
    assert list(redis_client.scan_iter(match=f"{namespace}:session:*")) == []


def test_a_contact_claim_is_registered_with_its_session_until_commit_or_release(
    redis_client: redis.Redis, namespace: str
) -> None:
    store = RedisStateStore(redis_client, namespace, session="s1")
    registry = session_locks_key(namespace, "s1")
    lock = f"{namespace}:lock:contact:hubspot:501"
    claim = store.claim("hubspot", "501", "evt", lease=10)
    assert claim is not None
    assert redis_client.hget(registry, lock) == claim.token.encode()
    assert store.claim("hubspot", "501", None, lease=10) is None
    store.commit(claim, ContactState(source="hubspot", crm_contact_id="501"), event=("evt", 60))
    assert not redis_client.exists(lock)
    assert redis_client.hlen(registry) == 0

    again = store.claim("hubspot", "501", "evt", lease=10)
    assert again is not None
    assert again.seen
    assert again.stored is not None
    store.release(again)
    assert not redis_client.exists(lock)
    assert redis_client.hlen(registry) == 0


def test_a_dead_session_is_taken_once_and_only_its_own_locks_are_released(
    redis_client: redis.Redis, namespace: str, keys: Keys
) -> None:
    # Given a session (not alive) that held two locks and two tasks; one lock expired and was taken since
    dead = RedisLocks(redis_client, namespace, session="dead")
    kept, lost = dead.acquire("tag:a", lease=60), dead.acquire("tag:b", lease=60)
    assert kept is not None
    assert lost is not None
    redis_client.set(f"{namespace}:lock:tag:b", "someone-else")
    redis_client.hset(keys.sessions, "dead", json.dumps({"host": "h", "pid": 1}))
    redis_client.sadd(keys.held("dead"), "t1", "t2")
    redis_client.zadd(keys.inflight("acct"), {"dead:x": 9e12, "alive:y": 9e12})

    # When it is claimed and its leftovers released
    taken = claim_session(redis_client, keys, "dead")
    assert taken is not None
    released = release_held(redis_client, keys, "dead", taken.locks, account="acct", slots="dead:")

    # Then its tasks and locks come out once, only its own lock and slot go, and the session is gone
    assert taken.held == {"t1", "t2"}
    assert taken.entry == {"host": "h", "pid": 1}
    assert released == (1, 1)
    assert not redis_client.exists(f"{namespace}:lock:tag:a")
    assert redis_client.get(f"{namespace}:lock:tag:b") == b"someone-else"
    assert redis_client.zrange(keys.inflight("acct"), 0, -1) == [b"alive:y"]
    assert claim_session(redis_client, keys, "dead") is None
    assert not redis_client.hexists(keys.sessions, "dead")


def test_a_session_that_beats_is_never_taken(redis_client: redis.Redis, keys: Keys) -> None:
    heartbeat = Heartbeat(redis_client, keys, WorkerSession("s1", "host", os.getpid()), entry={"host": "host"},
                          held=lambda: frozenset({"t1"}), timeout=TIMEOUT)  # fmt: skip
    heartbeat.beat_once()
    assert claim_session(redis_client, keys, "s1") is None
    assert redis_client.smembers(keys.held("s1")) == {b"t1"}


def test_heartbeats_list_the_live_workers_and_a_clean_stop_deregisters(
    redis_client: redis.Redis, namespace: str, keys: Keys
) -> None:
    session = WorkerSession("s1", "host-1", os.getpid())
    heartbeat = Heartbeat(redis_client, keys, session, entry={"host": "host-1", "nodename": "w1@host-1", "started": 5.0},
                          held=lambda: frozenset({"t1", "t2"}), timeout=TIMEOUT)  # fmt: skip
    heartbeat.beat_once()
    assert heartbeat.pulse.healthy_since is not None
    (listed,) = live_sessions(redis_client, namespace)
    assert (listed["id"], listed["nodename"], listed["held"]) == ("s1", "w1@host-1", 2)
    assert 0 < redis_client.pttl(keys.alive("s1")) <= TIMEOUT * 1000

    lock = RedisLocks(redis_client, namespace, session="s1").acquire("mover", lease=60)
    assert lock is not None
    heartbeat.deregister()
    assert live_sessions(redis_client, namespace) == []
    assert not redis_client.exists(f"{namespace}:lock:mover")  # nothing left behind
    assert read_recovery(redis_client, namespace)["dead_workers"] == 0


@pytest.fixture
def flaky(redis_client: redis.Redis) -> Iterator[Any]:
    """A client of the test's Redis, and ``away()`` / ``back()``: Redis unreachable for it (its
    connections go to a closed port) until it is back."""
    client = redis.Redis(connection_pool=redis_client.connection_pool)
    closed = redis.ConnectionPool(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)

    class Flaky:
        def __init__(self) -> None:
            self.client = client

        def away(self) -> None:
            client.connection_pool = closed

        def back(self) -> None:
            client.connection_pool = redis_client.connection_pool

    yield Flaky()
    closed.disconnect()


def test_a_release_that_failed_while_redis_was_away_is_paid_with_the_next_claim(
    redis_client: redis.Redis, namespace: str, flaky: Any
) -> None:
    # Given a claim whose release fails because Redis went away
    store = RedisStateStore(flaky.client, namespace, session="s1")
    claim = store.claim("hubspot", "501", None, lease=60)
    assert claim is not None
    flaky.away()
    with pytest.raises(redis.ConnectionError):
        store.release(claim)
    flaky.back()
    assert redis_client.exists(f"{namespace}:lock:contact:hubspot:501")

    # When the next claim of this process runs (in its one round trip)
    other = store.claim("hubspot", "502", None, lease=60)

    # Then the owed release went with it
    assert other is not None
    assert not redis_client.exists(f"{namespace}:lock:contact:hubspot:501")
    assert store.release_pending() == 0


def test_an_acquire_whose_answer_was_lost_is_released_once_redis_is_back(
    redis_client: redis.Redis, namespace: str, flaky: Any
) -> None:
    locks = RedisLocks(flaky.client, namespace, session="s1")
    flaky.away()
    with pytest.raises(redis.ConnectionError):
        locks.acquire("tag:z", lease=60)
    flaky.back()
    assert locks.release_pending() == 1  # owed: it may have been taken
    assert locks.acquire("tag:z", lease=60) is not None


class Restored:
    """Stands in for kombu's restore_by_tag: records, and removes the tags from the unacked hash."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.tags: list[str] = []
        self._client, self._keys = client, keys

    def __call__(self, tags: Sequence[str]) -> None:
        self.tags.extend(tags)
        self._client.hdel(self._keys.unacked, *tags)


def unacked(client: redis.Redis, keys: Keys, tag: str, queue: str = "ktsync.live") -> None:
    """A delivered message, as kombu's QoS records it."""
    client.hset(keys.unacked, tag, json.dumps([{"body": "", "headers": {}}, queue, queue]))


def healthy(long_ago: float = 3600.0) -> Pulse:
    pulse = Pulse()
    pulse.beat(time.monotonic() - long_ago)
    return pulse


def test_a_reclaimer_pass_gives_back_a_dead_workers_tasks_and_locks_and_then_the_orphans(
    redis_client: redis.Redis, namespace: str, keys: Keys
) -> None:
    # Given a live worker (us), a dead one holding t1 and a contact lock, and an orphan t2
    me = Heartbeat(
        redis_client, keys, WorkerSession("me", "h", os.getpid()), entry={}, held=frozenset, timeout=TIMEOUT
    )
    me.beat_once()
    lock = RedisStateStore(redis_client, namespace, session="dead").claim("hubspot", "9", None, lease=60)
    assert lock is not None
    redis_client.hset(keys.sessions, "dead", json.dumps({"host": "lost-host", "pid": 42, "account": "acct"}))
    redis_client.sadd(keys.held("dead"), "t1")
    for tag in ("t1", "t2"):
        unacked(redis_client, keys, tag)
    unacked(redis_client, keys, "t3", queue="another-app")
    restored = Restored(redis_client, keys)
    timeout = 0.2
    reclaimer = Reclaimer(redis_client, keys, session="me", account="acct", queues=QUEUES, timeout=timeout,
                          restore=restored, pulse=healthy())  # fmt: skip

    # When the reclaimer runs, and again once the orphan was unheld for longer than the timeout
    first = reclaimer.run_once()
    time.sleep(timeout + 0.1)
    second = reclaimer.run_once()

    # Then the dead worker's task goes back at once with its lock released, the orphan after the
    # timeout, and the other app's message stays
    assert (first.tasks, first.locks, first.workers, second.orphans) == (1, 1, 1, 1)
    assert restored.tags == ["t1", "t2"]
    assert not redis_client.exists(f"{namespace}:lock:contact:hubspot:9")
    assert redis_client.hkeys(keys.unacked) == [b"t3"]
    assert read_recovery(redis_client, namespace) == {
        "reclaimed_tasks": 2, "orphaned_tasks": 1, "released_locks": 1, "released_slots": 0, "dead_workers": 1,
    }  # fmt: skip


def test_a_reclaimer_within_its_grace_restores_nothing(redis_client: redis.Redis, keys: Keys) -> None:
    redis_client.hset(keys.sessions, "dead", "{}")
    redis_client.sadd(keys.held("dead"), "t1")
    unacked(redis_client, keys, "t1")
    restored = Restored(redis_client, keys)
    pulse = Pulse()
    pulse.beat(time.monotonic())  # its own heartbeat just started going through
    reclaimer = Reclaimer(redis_client, keys, session="me", account="acct", queues=QUEUES, timeout=TIMEOUT,
                          restore=restored, pulse=pulse)  # fmt: skip
    assert reclaimer.run_once().tasks == 0
    assert restored.tags == []
    assert redis_client.hexists(keys.sessions, "dead")
