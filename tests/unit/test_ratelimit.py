"""The global rate limiter: one test body for the Redis limiter and its in-memory twin."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from ktsync.core.lanes import Lane
from ktsync.worker.klicktipp.errors import RateLimited, ServerError
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.ratelimit import (
    Limits,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    Throttled,
    limiter_gate,
)
from ktsync.worker.ratelimit.gate import CallContext, pause_on_429
from tests.unit.twins import twin


def patient(seconds: float, lane: Lane = Lane.LIVE, *, followup: bool = False) -> Callable[[], CallContext]:
    return lambda: CallContext(lane, followup, seconds)


limiter = twin(MemoryRateLimiter, RedisRateLimiter)


def test_a_full_bucket_grants_the_burst_then_asks_to_wait_one_interval(limiter: RateLimiter) -> None:
    limits = Limits(rate=2.0, burst=3, max_in_flight=0)
    grants = [limiter.acquire("acct", limits, f"t{i}", followup=True) for i in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[3].why == "rate"
    assert 0.3 < grants[3].wait <= 0.5  # one token per 0.5 s


def test_a_new_task_leaves_the_last_token_to_a_task_already_under_way(limiter: RateLimiter) -> None:
    # Given a bucket with one token left
    limits = Limits(rate=2.0, burst=3, max_in_flight=0)
    assert limiter.acquire("acct", limits, "first-a").granted
    assert limiter.acquire("acct", limits, "first-b").granted

    # When a new task asks for its first call, Then it waits for two tokens
    refused = limiter.acquire("acct", limits, "first-c")
    assert (refused.granted, refused.why) == (False, "rate")
    assert 0.3 < refused.wait <= 0.5
    # But a task that already made a call gets the last one at once
    assert limiter.acquire("acct", limits, "second-a", followup=True).granted


def test_accounts_have_budgets_of_their_own(limiter: RateLimiter) -> None:
    limits = Limits(rate=1.0, burst=1, max_in_flight=0)  # burst 1: nothing to leave to anyone
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
    gate = limiter_gate(limiter, "acct", Limits(rate=20.0, burst=1, max_in_flight=1), context=patient(1.0))
    started = time.monotonic()
    for _ in range(3):
        with gate("api.tag.index"):
            pass
    assert time.monotonic() - started >= 0.09  # two refills at 20/s: the gate really waited


def test_the_gate_gives_up_on_a_long_wait_so_the_task_can_be_deferred(limiter: RateLimiter) -> None:
    gate = limiter_gate(limiter, "acct", Limits(rate=0.2, burst=1, max_in_flight=0), context=patient(0.5))
    with gate("api.tag.index"):
        pass
    with pytest.raises(Throttled) as exc, gate("api.tag.index"):
        pass
    assert exc.value.why == "rate"
    assert exc.value.wait > 4


def test_the_gate_releases_the_slot_when_the_call_fails(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=100, max_in_flight=1)
    gate = limiter_gate(limiter, "acct", limits, context=patient(0.1))
    with pytest.raises(RuntimeError), gate("api.tag.index"):
        raise RuntimeError("transport failed")
    assert limiter.acquire("acct", limits, "after").granted


def test_a_429_pauses_the_account_for_retry_after_other_errors_do_not(limiter: RateLimiter) -> None:
    observe = pause_on_429(limiter, "acct", max_pause=300)
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


def test_a_retry_after_above_max_pause_pauses_for_the_cap_and_says_so(
    limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    # Given KlickTipp asking for a day's wait
    observe = pause_on_429(limiter, "acct", max_pause=5)
    limited = RateLimited("slow down", operation="api.tag.index", status=429, retry_after=86400)

    # When the 429 is observed
    with caplog.at_level(logging.WARNING):
        observe(CallRecord("api.tag.index", "GET", "/tag", 429, 0.01, limited))

    # Then the account pauses for rate.max_pause, not a day, and the value seen is logged
    refused = limiter.acquire("acct", Limits(rate=100.0, burst=100, max_in_flight=0), "t1")
    assert refused.why == "paused"
    assert 4.0 < refused.wait <= 5.0
    assert "86400" in caplog.text
    assert "rate.max_pause" in caplog.text


# -- lanes: live work first, bulk gets at most its share while live work waits ---------------------


@pytest.fixture(params=["memory", "redis"])
def lane_limiter(request: pytest.FixtureRequest, namespace: str) -> tuple[RateLimiter, Callable[[int], None]]:
    """A limiter and a way to put messages into the live queue it watches."""
    pending = [0]
    if request.param == "memory":
        return MemoryRateLimiter(live_pending=lambda: pending[0]), lambda n: pending.__setitem__(0, n)
    client: redis.Redis = request.getfixturevalue("redis_client")
    queue = f"{namespace}:live-queue"

    def fill(n: int) -> None:
        client.delete(queue)
        if n:
            client.lpush(queue, *[b"m"] * n)

    return RedisRateLimiter(client, namespace, live_queue=queue), fill


SHARED = Limits(rate=10.0, burst=2, max_in_flight=0, bulk_share=0.25)


def drain(limiter: RateLimiter) -> None:
    while limiter.acquire("acct", SHARED, "drain", followup=True).granted:
        pass


def test_without_live_work_bulk_uses_the_whole_budget(
    lane_limiter: tuple[RateLimiter, Callable[[int], None]],
) -> None:
    limiter, _ = lane_limiter
    # Given an empty bucket and no live work anywhere
    drain(limiter)
    time.sleep(0.25)  # 2.5 tokens' time at 10/s (the bucket holds 2)
    # Then a bulk task's first call takes a token as a live one would
    assert limiter.acquire("acct", SHARED, "b1", lane=Lane.BULK).granted


def test_while_a_live_call_waits_bulk_gets_at_most_its_share(
    lane_limiter: tuple[RateLimiter, Callable[[int], None]],
) -> None:
    limiter, _ = lane_limiter
    # Given a live call refused for lack of tokens (live work is waiting)
    drain(limiter)
    assert limiter.acquire("acct", SHARED, "l1", lane=Lane.LIVE).why == "rate"
    limiter.acquire("acct", SHARED, "b0", lane=Lane.BULK)  # the bulk bucket's one token, if any

    # When tokens come back, Then a bulk task's first call is held to a quarter of the rate
    time.sleep(0.25)
    refused = limiter.acquire("acct", SHARED, "b1", lane=Lane.BULK)
    assert (refused.granted, refused.why) == (False, "share")
    assert refused.wait > 0.05
    # And the live call gets its token
    assert limiter.acquire("acct", SHARED, "l1", lane=Lane.LIVE).granted
    # And once it did, live work no longer waits: bulk takes what is there
    time.sleep(0.25)
    assert limiter.acquire("acct", SHARED, "b2", lane=Lane.BULK).granted


def test_live_messages_waiting_in_their_queue_count_as_live_work_waiting(
    lane_limiter: tuple[RateLimiter, Callable[[int], None]],
) -> None:
    limiter, fill = lane_limiter
    # Given live messages queued (every worker slot busy)
    fill(3)

    # Then bulk is refused with "share" although tokens are there
    assert limiter.acquire("acct", SHARED, "b2", lane=Lane.BULK).why == "share"
    # But a call of a bulk task under way still goes (it finishes work already started)
    assert limiter.acquire("acct", SHARED, "b1-second", lane=Lane.BULK, followup=True).granted
    # And once the live queue is empty, bulk goes again
    fill(0)
    time.sleep(0.15)
    assert limiter.acquire("acct", SHARED, "b3", lane=Lane.BULK).granted


def test_a_bulk_share_of_zero_stops_bulk_while_live_work_waits(
    lane_limiter: tuple[RateLimiter, Callable[[int], None]],
) -> None:
    limiter, fill = lane_limiter
    fill(1)
    refused = limiter.acquire(
        "acct", Limits(rate=10.0, burst=5, max_in_flight=0, bulk_share=0), "b", lane=Lane.BULK
    )
    assert (refused.granted, refused.why) == (False, "share")
    assert refused.wait == pytest.approx(0.25)


def test_a_bulk_call_refused_for_its_share_never_waits_in_place(
    lane_limiter: tuple[RateLimiter, Callable[[int], None]],
) -> None:
    limiter, fill = lane_limiter
    # Given live work waiting and a patient bulk task
    fill(1)
    limits = Limits(rate=10.0, burst=5, max_in_flight=0, bulk_share=0)
    gate = limiter_gate(limiter, "acct", limits, context=patient(10.0, Lane.BULK))

    # When it asks, Then it is deferred at once: its worker slot may be what the live work waits for
    started = time.monotonic()
    with pytest.raises(Throttled) as refused, gate("api.subscriber.signin"):
        pass
    assert refused.value.why == "share"
    assert time.monotonic() - started < 0.2


def test_a_first_call_takes_spare_tokens_only_beyond_its_own_need(limiter: RateLimiter) -> None:
    # Given a bucket of 4 tokens, slowly refilled
    limits = Limits(rate=0.01, burst=4, max_in_flight=0)
    # When a task's first call asks for 3 spares
    grant = limiter.acquire("acct", limits, "first", spare=3)
    # Then it gets the 2 the bucket holds beyond the 2 a first call needs, and the last token stays
    # for a call of a task under way
    assert (grant.granted, grant.spare) == (True, 2)
    assert not limiter.acquire("acct", limits, "another-first").granted
    assert limiter.acquire("acct", limits, "followup", followup=True).granted
    # And a bucket with nothing to spare still grants the call itself
    limiter.give_back("acct", limits, 2)
    assert limiter.acquire("acct", limits, "first-again", spare=3).spare == 0


def test_no_spare_tokens_with_a_cap_on_calls_in_flight(limiter: RateLimiter) -> None:
    limits = Limits(rate=100.0, burst=10, max_in_flight=4)
    assert limiter.acquire("acct", limits, "t1", spare=2).spare == 0


def test_spare_tokens_given_back_never_overfill_the_bucket_nor_end_a_pause(limiter: RateLimiter) -> None:
    limits = Limits(rate=0.01, burst=3, max_in_flight=0)
    assert limiter.acquire("acct", limits, "t1", spare=1).spare == 1  # 3 -> 1
    limiter.give_back("acct", limits, 5)  # back to the burst, not above it
    grants = [limiter.acquire("acct", limits, f"f{i}", followup=True).granted for i in range(4)]
    assert grants == [True, True, True, False]
    limiter.pause("acct", 5.0)
    limiter.give_back("acct", limits, 3)  # the pause emptied the bucket on purpose
    assert limiter.acquire("acct", limits, "after", followup=True).why == "paused"


class Scope:
    """A task scope as the runtime's Telemetry is one: the running task, and its closing writes."""

    def __init__(self) -> None:
        self.task: object | None = None
        self.closing: list[Callable[[Any], None]] = []
        self.calls = 0

    def current(self) -> object | None:
        return self.task

    def at_end(self, stage: Callable[[Any], None]) -> None:
        self.closing.append(stage)

    def run(self, gate: Callable[[str], Any], calls: int) -> None:
        """One task making ``calls`` calls through ``gate``, then its closing round trip."""
        self.task, self.calls = object(), 0
        for _ in range(calls):
            with gate("api.subscriber.tag"):
                self.calls += 1
        for stage in self.closing:
            stage(None)
        self.task, self.closing = None, []

    def context(self) -> CallContext:
        return CallContext(Lane.LIVE, self.calls > 0, 1.0)


class Counting:
    """A limiter that counts the acquisitions it is asked for (round trips, for the Redis one)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter, self.asked = limiter, 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.asked += 1
        return self.limiter.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.limiter, name)


def test_a_task_like_the_one_before_pays_its_follow_up_with_its_first_call(limiter: RateLimiter) -> None:
    # Given a gate that knows the running task, over an ample budget
    limits = Limits(rate=1000.0, burst=100, max_in_flight=0)
    scope, counting = Scope(), Counting(limiter)
    gate = limiter_gate(counting, "acct", limits, context=scope.context, scope=scope)  # type: ignore[arg-type]
    # When a task makes two calls, then the next task on the thread makes two
    scope.run(gate, 2)
    assert counting.asked == 2  # nothing known yet: each call asks
    scope.run(gate, 2)
    # Then the second task's follow-up went without asking: its first call took a token for it
    assert counting.asked == 3


def test_spare_tokens_a_task_did_not_use_go_back_with_its_closing(limiter: RateLimiter) -> None:
    # Given a bucket of 5 tokens that barely refills, and a thread whose last task made 2 follow-ups
    limits = Limits(rate=0.01, burst=5, max_in_flight=0)
    scope = Scope()
    gate = limiter_gate(limiter, "acct", limits, context=scope.context, scope=scope)
    scope.run(gate, 3)  # 5 -> 2 tokens
    limiter.give_back("acct", limits, 3)  # full again
    # When the next task takes 2 spares with its first call but makes no other call
    scope.run(gate, 1)
    # Then its closing gave both back: 4 tokens are there for calls of tasks under way
    grants = [limiter.acquire("acct", limits, f"f{i}", followup=True).granted for i in range(5)]
    assert grants == [True, True, True, True, False]


def test_only_a_call_that_waited_reports_its_wait(limiter: RateLimiter) -> None:
    waits: list[float] = []
    gate = limiter_gate(limiter, "acct", Limits(rate=20.0, burst=1, max_in_flight=0), context=patient(1.0),
                        on_wait=waits.append)  # fmt: skip
    with gate("api.tag.index"):  # granted at once
        pass
    assert waits == []
    with gate("api.tag.index"):  # the bucket is empty: waits one refill
        pass
    assert len(waits) == 1
    assert waits[0] > 0.02
