"""The global rate limiter: one test body for the Redis limiter and its in-memory twin."""

from __future__ import annotations

import time

import pytest
import redis

from worker.klicktipp.errors import RateLimited, ServerError
from worker.klicktipp.http import CallRecord
from worker.ratelimit import Limits, MemoryRateLimiter, RateLimiter, RedisRateLimiter, Throttled, limiter_gate
from worker.ratelimit.gate import pause_on_429


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, namespace: str) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisRateLimiter(client, namespace)


def test_a_full_bucket_grants_the_burst_then_asks_to_wait_one_interval(limiter: RateLimiter) -> None:
    limits = Limits(rate=2.0, burst=3, max_in_flight=0)
    grants = [limiter.acquire("acct", limits, f"t{i}") for i in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[3].why == "rate"
    assert 0.3 < grants[3].wait <= 0.5  # one token per 0.5 s


def test_accounts_have_budgets_of_their_own(limiter: RateLimiter) -> None:
    limits = Limits(rate=1.0, burst=1, max_in_flight=0)
    assert limiter.acquire("a", limits, "t1").granted
    assert not limiter.acquire("a", limits, "t2").granted
    assert limiter.acquire("b", limits, "t3").granted


def test_calls_in_flight_are_capped_until_one_is_released(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=100, max_in_flight=2)
    assert limiter.acquire("acct", limits, "t1").granted
    assert limiter.acquire("acct", limits, "t2").granted
    refused = limiter.acquire("acct", limits, "t3")
    assert (refused.granted, refused.why) == (False, "in_flight")
    limiter.release("acct", "t1")
    assert limiter.acquire("acct", limits, "t3").granted


def test_a_slot_held_by_a_dead_worker_is_freed_when_its_lease_ends(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=100, max_in_flight=1, lease=0.05)
    assert limiter.acquire("acct", limits, "crashed").granted
    time.sleep(0.1)
    assert limiter.acquire("acct", limits, "next").granted


def test_a_pause_stops_every_caller_for_its_duration(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=100, max_in_flight=0)
    limiter.pause("acct", 5.0)
    refused = limiter.acquire("acct", limits, "t1")
    assert (refused.granted, refused.why) == (False, "paused")
    assert 4.0 < refused.wait <= 5.0
    limiter.pause("acct", 1.0)  # a shorter pause never shortens the current one
    assert limiter.acquire("acct", limits, "t2").wait > 4.0


def test_the_gate_waits_in_place_for_a_short_wait(limiter: RateLimiter) -> None:
    gate = limiter_gate(limiter, "acct", Limits(rate=20.0, burst=1, max_in_flight=1), max_wait=1.0)
    started = time.monotonic()
    for _ in range(3):
        with gate("api.tag.index"):
            pass
    assert time.monotonic() - started >= 0.09  # two refills at 20/s: the gate really waited


def test_the_gate_gives_up_on_a_long_wait_so_the_task_can_requeue(limiter: RateLimiter) -> None:
    gate = limiter_gate(limiter, "acct", Limits(rate=0.2, burst=1, max_in_flight=0), max_wait=0.5)
    with gate("api.tag.index"):
        pass
    with pytest.raises(Throttled) as exc, gate("api.tag.index"):
        pass
    assert exc.value.why == "rate"
    assert exc.value.wait > 4


def test_the_gate_releases_the_slot_when_the_call_fails(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=100, max_in_flight=1)
    gate = limiter_gate(limiter, "acct", limits, max_wait=0.1)
    with pytest.raises(RuntimeError), gate("api.tag.index"):
        raise RuntimeError("transport failed")
    assert limiter.acquire("acct", limits, "after").granted


def test_a_429_pauses_the_account_for_retry_after_other_errors_do_not(limiter: RateLimiter) -> None:
    observe = pause_on_429(limiter, "acct")
    limits = Limits(rate=100.0, burst=100, max_in_flight=0)
    error = ServerError("boom", operation="api.tag.index", status=503)
    observe(CallRecord("api.tag.index", "GET", "/tag", 503, 0.01, error))
    assert limiter.acquire("acct", limits, "t1").granted
    limited = RateLimited("slow down", operation="api.tag.index", status=429, retry_after=3)
    observe(CallRecord("api.tag.index", "GET", "/tag", 429, 0.01, limited))
    assert limiter.acquire("acct", limits, "t2").why == "paused"


def test_after_a_pause_the_bucket_starts_empty_so_no_burst_hits_klicktipp_again(limiter: RateLimiter) -> None:
    # Given a full bucket (burst 10) and a 429 that paused the account briefly
    limits = Limits(rate=100.0, burst=10, max_in_flight=0)
    limiter.pause("acct", 0.05)
    time.sleep(0.1)

    # When the pause is over, Then tokens come at the (reduced) rate, not as a burst of 10
    granted = sum(limiter.acquire("acct", limits, f"t{i}").granted for i in range(10))
    assert 1 <= granted <= 6


def test_each_429_cuts_the_rate_which_then_recovers() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    limits = Limits(rate=10.0, burst=1, max_in_flight=0)

    def interval() -> float:
        """Seconds until the next token after taking one."""
        assert limiter.acquire("acct", limits, "a").granted
        return limiter.acquire("acct", limits, "b").wait

    assert interval() == pytest.approx(0.1)
    limiter.pause("acct", 1.0)  # a 429: rate x 0.7
    now[0] = 1.0
    limiter.acquire("acct", limits, "drain")
    now[0] = 3.0
    assert interval() == pytest.approx(1 / (10 * (0.7 + 2 * 0.02)), rel=0.01)
    now[0] = 60.0
    assert interval() == pytest.approx(0.1)  # fully recovered
