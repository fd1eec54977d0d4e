"""The console's hour of per-lane history: the window arithmetic, and the Redis series and its twin
through one test body."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pytest
import redis

from ktsync.core.lanes import LANES
from ktsync.core.series import (
    HORIZON,
    STEP,
    MemorySeries,
    Point,
    RedisSeries,
    Series,
    increments,
    points,
    read,
    read_many,
    read_windows,
    series_key,
    stage,
    throughput,
    ttl_of,
    window_of,
    windows,
)
from tests.unit.twins import twin

series = twin(MemorySeries, lambda client, _namespace: RedisSeries(client))

NOW = 1_800_000.0  # the test clock: a window start, a multiple of 300 and 3600 too
POINTS = HORIZON // STEP


# --- pure helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "step", "start"),
    [(0.0, 60, 0), (59.999, 60, 0), (60.0, 60, 60), (119.5, 60, 60), (299.0, 300, 0), (300.0, 300, 300)],
)
def test_a_time_falls_in_the_window_starting_at_the_last_multiple_of_the_step(
    now: float, step: int, start: int
) -> None:
    assert window_of(now, step) == start


def test_the_windows_of_an_hour_are_sixty_consecutive_minutes_oldest_first_ending_with_the_current() -> None:
    starts = windows(NOW + 59)
    assert len(starts) == POINTS
    assert starts[-1] == window_of(NOW + 59) == NOW
    assert starts == sorted(starts)
    assert {b - a for a, b in pairwise(starts)} == {STEP}
    assert starts[0] == NOW - HORIZON + STEP


def test_coarser_points_read_the_minute_windows_from_the_first_aligned_point_on() -> None:
    base = read_windows(NOW + 90, step=300)  # NOW is a multiple of 300 too
    assert base[0] == windows(NOW + 90, step=300)[0] == NOW - 11 * 300
    assert base[-1] == window_of(NOW + 90) == NOW + 60
    assert {b - a for a, b in pairwise(base)} == {STEP}


@pytest.mark.parametrize(("horizon", "step"), [(HORIZON, 90), (HORIZON, 420), (HORIZON, 0), (30, 60)])
def test_a_step_that_is_no_multiple_of_the_window_or_does_not_divide_the_horizon_is_refused(
    horizon: int, step: int
) -> None:
    with pytest.raises(ValueError, match="step"):
        read_windows(NOW, horizon=horizon, step=step)


@pytest.mark.parametrize("offset", [0.0, 0.001, 30.0, 59.0, 59.999])
def test_a_window_expires_an_hour_after_it_closes_whenever_it_was_written(offset: float) -> None:
    ttl = ttl_of(NOW + offset)
    assert HORIZON < ttl <= HORIZON + STEP
    assert NOW + offset + ttl == pytest.approx(NOW + STEP + HORIZON, abs=1)


def test_only_non_zero_fields_are_written() -> None:
    assert increments("live") == {}
    assert increments("bulk", calls=3, done=1) == {"calls|bulk": 3, "done|bulk": 1}
    assert increments("live", throttled=1, latency=2.5) == {
        "throttled|live": 1,
        "latency_sum|live": 2.5,
        "latency_count|live": 1,
    }
    assert increments("live", latency=math.nan) == {}  # a clock gone wrong is not an observation
    assert increments("live", latency=-1.0) == {"latency_count|live": 1}  # clocks a little apart: 0 s


def test_a_point_gives_rates_per_second_and_a_mean_latency_only_when_changes_were_applied() -> None:
    point = Point(t=60, calls=120, throttled=6, done=30, latency_sum=45.0, latency_count=30)
    assert (point.calls_per_s, point.throttled_per_s, point.done_per_s) == (2.0, 0.1, 0.5)
    assert point.latency_mean == 1.5
    assert Point(t=60).latency_mean is None
    assert Point(t=0, done=600, step=300).done_per_s == 2.0


def test_raw_hashes_become_points_per_lane_with_unknown_fields_ignored() -> None:
    raws: list[dict[Any, Any]] = [
        {b"calls|live": b"4", b"done|bulk": b"2", b"latency_sum|bulk": b"3.5", b"latency_count|bulk": b"2"},
        {},
        {"calls|live": "1", "other|live": "9", "calls|nolane": "7"},  # a client that decodes answers
    ]
    got = points(raws, [0, 60, 120])
    assert set(got) == {lane.value for lane in LANES}
    assert got["live"] == [Point(t=0, calls=4), Point(t=60), Point(t=120, calls=1)]
    assert got["bulk"][0] == Point(t=0, done=2, latency_sum=3.5, latency_count=2)


def test_current_throughput_counts_the_last_full_window_and_the_elapsed_part_of_this_one() -> None:
    recent = [Point(t=0, done=99), Point(t=60, done=60), Point(t=120, done=30)]
    assert throughput(recent, now=150.0) == pytest.approx(90 / 90)
    assert throughput(recent[:1], now=30.0) == pytest.approx(99 / 30)
    assert throughput([], now=30.0) == 0.0


# --- the Redis series and its twin ------------------------------------------------------------------


def test_writes_land_in_the_window_of_their_time_per_lane_with_zeros_elsewhere(
    series: Series, namespace: str
) -> None:
    # Given tasks ended in the current minute, in the one before and ten minutes ago
    series.record(namespace, "live", NOW + 5, calls=2, done=1, latency=1.0)
    series.record(namespace, "live", NOW + 50, calls=3, throttled=1, done=1, latency=2.0)
    series.record(namespace, "live", NOW - 30, done=1)
    series.record(namespace, "bulk", NOW - 600, calls=5, done=1)
    # When the console reads the last hour
    got = series.read(namespace, NOW + 55)
    # Then each lane has an hour of minute points, oldest first, the current minute last
    assert set(got) == {"live", "bulk"}
    for lane_points in got.values():
        assert [p.t for p in lane_points] == windows(NOW + 55)
    live, bulk = got["live"], got["bulk"]
    assert live[-1] == Point(t=int(NOW), calls=5, throttled=1, done=2, latency_sum=3.0, latency_count=2)
    assert live[-1].latency_mean == 1.5
    assert live[-2] == Point(t=int(NOW) - 60, done=1)
    assert bulk[-11] == Point(t=int(NOW) - 600, calls=5, done=1)
    # And zeros everywhere else
    assert [p for p in live[:-2] + bulk[:-11] + bulk[-10:] if p != Point(t=p.t)] == []


def test_a_window_older_than_the_horizon_is_not_read(series: Series, namespace: str) -> None:
    series.record(namespace, "live", NOW, calls=1, done=1)
    assert sum(p.calls for p in series.read(namespace, NOW + HORIZON - 1)["live"]) == 1
    assert sum(p.calls for p in series.read(namespace, NOW + HORIZON)["live"]) == 0


def test_nothing_written_reads_as_an_hour_of_zeros(series: Series, namespace: str) -> None:
    got = series.read(namespace, NOW)
    assert got == {lane.value: [Point(t=t) for t in windows(NOW)] for lane in LANES}


def test_coarser_points_add_up_the_minutes_they_cover(series: Series, namespace: str) -> None:
    series.record(namespace, "bulk", NOW + 10, calls=2, done=1)
    series.record(namespace, "bulk", NOW + 130, calls=3, done=1)
    got = series.read(namespace, NOW + 150, step=300)["bulk"]
    assert len(got) == HORIZON // 300
    assert got[-1] == Point(t=int(NOW), calls=5, done=2, step=300)
    assert got[-1].calls_per_s == 5 / 300


def test_several_tenants_are_read_together_each_from_its_own_prefix(series: Series, namespace: str) -> None:
    acme, shop = f"{namespace}@acme", f"{namespace}@shop"
    series.record(acme, "live", NOW, calls=1, done=1)
    series.record(shop, "bulk", NOW, calls=7, done=1)
    got = series.read_many([acme, shop, f"{namespace}@quiet"], NOW + 1)
    assert list(got) == [acme, shop, f"{namespace}@quiet"]
    assert (got[acme]["live"][-1].calls, got[acme]["bulk"][-1].calls) == (1, 0)
    assert (got[shop]["live"][-1].calls, got[shop]["bulk"][-1].calls) == (0, 7)
    assert got[f"{namespace}@quiet"] == series.read(f"{namespace}@quiet", NOW + 1)
    assert series.read_many([], NOW) == {}


def test_the_twin_keeps_at_most_an_hour_and_two_windows_per_prefix() -> None:
    memory, now, most = MemorySeries(), NOW, 0
    while now < NOW + 3 * HORIZON:
        memory.record("p", "live", now, calls=1)
        most = max(most, len(memory.keys(now)))
        now += 7
    assert most <= HORIZON // STEP + 2


class Recorder:
    """A pipeline stand-in that records the commands staged on it."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.commands.append((name, args))


def test_a_write_stages_one_increment_per_non_zero_field_and_one_expire() -> None:
    pipe = Recorder()
    stage(pipe, "p", "live", NOW + 1, calls=2, done=1, latency=0.5)
    key = series_key("p", int(NOW))
    assert pipe.commands == [
        ("hincrby", (key, "calls|live", 2)),
        ("hincrby", (key, "done|live", 1)),
        ("hincrbyfloat", (key, "latency_sum|live", 0.5)),
        ("hincrby", (key, "latency_count|live", 1)),
        ("expire", (key, HORIZON + STEP - 1)),
    ]
    quiet = Recorder()
    stage(quiet, "p", "live", NOW)
    assert quiet.commands == []


def test_in_redis_a_window_expires_within_the_horizon_and_a_bit(
    redis_client: redis.Redis, namespace: str
) -> None:
    pipe = redis_client.pipeline(transaction=False)
    stage(pipe, namespace, "bulk", NOW + 30, calls=1, throttled=1, done=1)
    pipe.execute()
    ttl = redis_client.ttl(series_key(namespace, int(NOW)))
    assert HORIZON < ttl <= HORIZON + STEP
    assert redis_client.hgetall(series_key(namespace, int(NOW))) == {
        b"calls|bulk": b"1",
        b"throttled|bulk": b"1",
        b"done|bulk": b"1",
    }


class CountingClient:
    """A Redis client that counts round trips (each direct command, each pipeline execution)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client, self.round_trips = client, 0

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self._client.pipeline(transaction=transaction)
        execute = pipe.execute

        def counted() -> Any:
            self.round_trips += 1
            return execute()

        pipe.execute = counted  # type: ignore[method-assign,assignment]
        return pipe

    def __getattr__(self, name: str) -> Any:
        self.round_trips += 1
        return getattr(self._client, name)


def test_in_redis_reading_one_tenant_or_several_is_one_round_trip(
    redis_client: redis.Redis, namespace: str
) -> None:
    counting = CountingClient(redis_client)
    read(counting, namespace, NOW)  # type: ignore[arg-type]
    assert counting.round_trips == 1
    read_many(counting, [f"{namespace}@a", f"{namespace}@b", f"{namespace}@c"], NOW)  # type: ignore[arg-type]
    assert counting.round_trips == 2
