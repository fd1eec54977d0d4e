"""Writes held for a task's closing round trip: the commit and outbound entry the service hands back,
and what other parts stage with the telemetry (limiter waits, spare tokens)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from ktsync.core import series
from ktsync.core.lanes import Lane
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.outbound import MemoryOutbound, Outbound, RedisOutbound
from ktsync.worker.state import ContactState, MemoryStateStore, RedisStateStore, StateStore
from ktsync.worker.telemetry import Telemetry, read_limiter
from tests.unit.twins import twin

state_store = twin(MemoryStateStore, lambda client, ns: RedisStateStore(client, ns, session="s1"))
outbound = twin(MemoryOutbound, RedisOutbound)

ALEX = ContactState(source="hubspot", crm_contact_id="501", klicktipp_id="9", email="alex@shop.example")


def closing_pipe(request: pytest.FixtureRequest, part: object) -> Any:
    """The closing round trip's pipeline (a MULTI) for a Redis-backed part; None for a twin."""
    if isinstance(part, RedisStateStore | RedisOutbound):
        client: redis.Redis = request.getfixturevalue("redis_client")
        return client.pipeline(transaction=True)
    return None


def test_a_held_commit_keeps_the_claim_until_the_closing_round_trip_writes_it(
    state_store: StateStore, request: pytest.FixtureRequest
) -> None:
    # Given a claimed contact whose commit is held
    claim = state_store.claim("hubspot", "501", "evt-1", lease=30)
    assert claim is not None
    held = state_store.hold(claim, ALEX, event=("evt-1", 60))
    # Then nothing is written yet, the contact stays claimed, and the claim is not released twice
    assert claim.done
    assert state_store.get("hubspot", "501") is None
    assert state_store.claim("hubspot", "501", None, lease=30) is None
    # When the closing round trip stages and sends it
    pipe = closing_pipe(request, state_store)
    held.stage(pipe)
    if pipe is not None:
        pipe.execute()
    # Then the record and the event are written, and the contact is free again
    assert state_store.get("hubspot", "501") == ALEX
    assert state_store.seen_event("hubspot", "evt-1")
    assert state_store.claim("hubspot", "501", None, lease=30) is not None


def test_a_held_commit_whose_round_trip_failed_still_owes_the_release(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given a held commit whose closing round trip never reached Redis
    store = RedisStateStore(redis_client, namespace, session="s1")
    other_worker = RedisStateStore(redis_client, namespace, session="s2")
    claim = store.claim("hubspot", "501", None, lease=30)
    assert claim is not None
    store.hold(claim, ALEX).lost()
    assert other_worker.claim("hubspot", "501", None, lease=30) is None
    # When the owed releases are paid (with the store's next claim, or by the heartbeat)
    assert store.release_pending() == 1
    # Then another worker can claim the contact
    assert other_worker.claim("hubspot", "501", None, lease=30) is not None


def test_a_held_outbound_entry_is_published_by_the_closing_round_trip(
    outbound: Outbound, request: pytest.FixtureRequest
) -> None:
    payload = {"crm_contact_id": "501", "klicktipp_id": "9"}
    held = outbound.hold("contact.synced", payload)
    payload["klicktipp_id"] = "changed later"  # the entry is what was held, not what came after
    assert outbound.read() == []
    pipe = closing_pipe(request, outbound)
    held.stage(pipe)
    if pipe is not None:
        pipe.execute()
    assert [(kind, body) for _, kind, body in outbound.read()] == [
        ("contact.synced", {"crm_contact_id": "501", "klicktipp_id": "9"})
    ]


def test_within_a_task_limiter_waits_and_staged_writes_go_with_its_end(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given a task that waited twice for the budget and had a write staged by another part
    telemetry = Telemetry(redis_client, namespace, clock=lambda: 1000.0)
    telemetry.begin("hubspot", "501", Lane.LIVE)
    task = telemetry.current()
    telemetry.waited(0.5)
    telemetry.waited(0.0001)  # granted at once: not a wait
    telemetry.throttled()
    telemetry.at_end(lambda pipe: pipe.set(f"{namespace}:staged", "1"))
    assert telemetry.current() is task
    # Then nothing is written during the task
    assert read_limiter(redis_client, namespace) == {}
    assert redis_client.get(f"{namespace}:staged") is None
    # When the task ends in its closing round trip
    pipe = redis_client.pipeline(transaction=False)
    telemetry.end(pipe)
    pipe.execute()
    # Then all of it is written at once, and no task runs any more
    assert read_limiter(redis_client, namespace) == {"waits": 1.0, "wait_seconds": 0.5, "throttled": 1.0}
    assert redis_client.get(f"{namespace}:staged") == b"1"
    assert telemetry.current() is None


def test_outside_a_task_limiter_waits_and_staged_writes_are_written_at_once(
    redis_client: redis.Redis, namespace: str
) -> None:
    telemetry = Telemetry(redis_client, namespace)
    telemetry.waited(0.25)
    telemetry.at_end(lambda pipe: pipe.set(f"{namespace}:staged", "1"))
    assert read_limiter(redis_client, namespace) == {"waits": 1.0, "wait_seconds": 0.25}
    assert redis_client.get(f"{namespace}:staged") == b"1"


def test_a_task_s_end_adds_its_calls_429s_and_latency_to_the_console_series_of_its_lane(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given a bulk task of tenant acme that made three KlickTipp calls, one answered 429
    prefix = f"{namespace}@acme"
    telemetry = Telemetry(redis_client, prefix, clock=lambda: 1_800_010.0)
    telemetry.begin("hubspot", "501", Lane.BULK)
    for status in (429, 200, 200):
        telemetry.call(CallRecord("api.subscriber.create", "POST", "/subscriber", status, 0.01, None))
    # When it ends in its closing round trip, its change applied 2.5 s after it was enqueued
    pipe = redis_client.pipeline(transaction=False)
    telemetry.end(pipe, latency=2.5)
    pipe.execute()
    # Then the current minute of its tenant's series counts it, in its lane only
    got = series.read(redis_client, prefix, 1_800_020.0)
    assert got["bulk"][-1] == series.Point(
        t=1_800_000, calls=3, throttled=1, done=1, latency_sum=2.5, latency_count=1
    )
    assert got["live"][-1] == series.Point(t=1_800_000)
    assert series.read(redis_client, namespace, 1_800_020.0)["bulk"][-1].done == 0  # not the default tenant's
