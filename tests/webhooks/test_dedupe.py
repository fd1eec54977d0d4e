"""The Redis deduper and its in-memory twin pass the same test bodies."""

from __future__ import annotations

import time

import pytest
import redis

from ktsync.core.dedupe import Deduper, MemoryDeduper, RedisDeduper

LEASE = 0.2


@pytest.fixture(params=["memory", "redis"])
def deduper(request: pytest.FixtureRequest, namespace: str) -> Deduper:
    if request.param == "memory":
        return MemoryDeduper(ttl=60, lease=LEASE)
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisDeduper(client, namespace, ttl=60, lease=LEASE)


def test_a_committed_event_is_a_duplicate_afterwards(deduper: Deduper) -> None:
    first = deduper.claim("hubspot", ["1", "2"])
    assert (first.claimed, first.done, first.in_flight) == (("1", "2"), frozenset(), frozenset())
    deduper.commit(first)
    again = deduper.claim("hubspot", ["2", "3"])
    assert (again.claimed, again.done) == (("3",), frozenset({"2"}))


def test_ids_are_per_vendor(deduper: Deduper) -> None:
    deduper.commit(deduper.claim("hubspot", ["1"]))
    assert deduper.claim("close", ["1"]).claimed == ("1",)


def test_a_claim_held_by_another_request_is_in_flight(deduper: Deduper) -> None:
    deduper.claim("close", ["ev_1"])
    second = deduper.claim("close", ["ev_1"])
    assert (second.claimed, second.in_flight) == ((), frozenset({"ev_1"}))


def test_a_released_claim_can_be_claimed_again(deduper: Deduper) -> None:
    # Given a request whose enqueue failed, When it releases, Then the vendor's retry is not a duplicate
    deduper.release(deduper.claim("zoho", ["h1"]))
    assert deduper.claim("zoho", ["h1"]).claimed == ("h1",)


def test_release_removes_only_this_requests_own_claims(deduper: Deduper) -> None:
    mine = deduper.claim("zoho", ["a"])
    deduper.commit(mine)
    late = deduper.claim("zoho", ["a", "b"])  # "a" is done, "b" is claimed by late
    deduper.release(mine)  # must not touch "a" (done) ...
    deduper.release(late)  # ... and only frees "b"
    final = deduper.claim("zoho", ["a", "b"])
    assert (final.claimed, final.done) == (("b",), frozenset({"a"}))


def test_a_claim_of_a_request_that_died_expires_after_its_lease(deduper: Deduper) -> None:
    deduper.claim("hubspot", ["9"])  # never committed nor released
    time.sleep(LEASE + 0.1)
    assert deduper.claim("hubspot", ["9"]).claimed == ("9",)


def test_repeated_ids_in_one_claim_count_once(deduper: Deduper) -> None:
    assert deduper.claim("generic", ["s:e", "s:e"]).claimed == ("s:e",)


def test_nothing_to_claim(deduper: Deduper) -> None:
    claim = deduper.claim("klicktipp", [])
    deduper.commit(claim)
    deduper.release(claim)
    assert claim.claimed == ()


def test_the_redis_key_layout(redis_client: redis.Redis, namespace: str) -> None:
    deduper = RedisDeduper(redis_client, namespace, ttl=60)
    deduper.commit(deduper.claim("hubspot", ["77"]))
    key = f"{namespace}:webhook:hubspot:77"
    assert redis_client.get(key) == b"done"
    assert 0 < redis_client.ttl(key) <= 60
