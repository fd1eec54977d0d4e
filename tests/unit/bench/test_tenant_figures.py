"""The tenants bench's pure figures: percentiles, Jain's index, per-account rates, CPU ticks from /proc."""

from __future__ import annotations

import math

import pytest

from bench.cpu import ProcessTicks, Sample, machine_ticks, process_ticks, tree_ticks, usage
from bench.figures import Window, aggregate_share, jain_index, percentile, rates, refusals
from bench.tenants_report import Measured, figures

WINDOW = Window(100.0, 110.0)


def entry(account: str | None, ts: float, status: int = 200) -> dict[str, object]:
    return {"account": account, "ts": ts, "status": status}


# -- percentiles and Jain's index ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        (list(range(1, 21)), 0.5, 11),
        (list(range(1, 21)), 0.95, 20),
        ([3.0, 1.0, 2.0], 0.0, 1.0),  # sorts first
        ([3.0, 1.0, 2.0], 1.0, 3.0),
        ([7.0], 0.95, 7.0),
    ],
)
def test_percentile_is_the_nearest_rank_of_the_sorted_values(values, share, expected):
    assert percentile(values, share) == expected


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 0.95))


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        ([1.0, 1.0, 1.0, 1.0], 1.0),  # everyone got the same
        ([1.0, 0.0, 0.0, 0.0], 0.25),  # one took it all: 1/n
        ([1.0, 0.5], 0.9),  # (1.5)^2 / (2 * 1.25)
        ([0.8, 0.8, 0.8], 1.0),  # equal, if below the budget
        ([0.0, 0.0], 1.0),  # nobody got anything, equally
    ],
)
def test_jains_index(shares, expected):
    assert jain_index(shares) == pytest.approx(expected)


def test_jains_index_of_no_tenant_is_nan():
    assert math.isnan(jain_index([]))


# -- per-account rates from the fake's request log -----------------------------------------------
def test_rates_count_accepted_requests_per_account_within_the_window():
    # Given a log with accepted calls, 429s, a call before the window and an unauthenticated one
    log = [
        entry("t00", 99.0),  # before the window
        *(entry("t00", 100.0 + i / 2) for i in range(20)),  # 20 in 10 s
        entry("t00", 105.0, status=429),  # refused: not achieved
        *(entry("t01", 101.0 + i) for i in range(5)),
        entry("t01", 104.0, status=404),  # answered, spent the budget
        entry(None, 103.0),  # a login that failed: no account
        entry("t01", 111.0),  # after the window
    ]

    # Then
    assert rates(log, WINDOW) == {"t00": 2.0, "t01": 0.6}
    assert refusals(log) == {"t00": 1}


def test_the_aggregate_is_what_all_got_of_what_they_could_use():
    achieved = {"importer": 4.5, "quiet": 1.0}
    capacity = {"importer": 5.0, "quiet": 1.0}
    assert aggregate_share(achieved, capacity) == pytest.approx(5.5 / 6.0)
    assert math.isnan(aggregate_share({}, {}))


def test_scenario_figures_from_a_measured_run():
    # Given two importers (one finished early) and one quiet tenant, R = 5/s over a 10-s window
    log = [
        *(entry("t00", 100.0 + i / 5) for i in range(50)),  # 5/s: its whole budget
        *(entry("t01", 100.0 + i / 4) for i in range(40)),  # 4/s
        *(entry("t02", 100.0 + i) for i in range(10)),  # 1/s: two calls per change, one change per 2 s
        entry("t02", 100.5, status=429),
    ]
    changes = {("t02", f"c{i}"): 100.0 + 2 * i for i in range(5)}
    measured = Measured(
        scenario="s",
        importers=("t00", "t01"),
        quiet=("t02",),
        window=WINDOW,
        log=log,
        enqueued_at=changes,
        latencies=dict.fromkeys(changes, 0.1),
        unsynced=0,
        imported={"t00": 10, "t01": 10},
        cpu=usage(Sample({}, 0.0, 0.0), Sample({}, 0.0, 0.0), 10.0),
    )

    # When
    f = figures(measured, budget=5.0, import_size=100)

    # Then
    assert f.achieved == {"t00": 5.0, "t01": 4.0, "t02": 1.0}
    assert f.calls_per_change == pytest.approx(2.0)
    assert f.capacity == {"t00": 5.0, "t01": 5.0, "t02": 1.0}
    assert f.aggregate == pytest.approx(10.0 / 11.0)
    assert f.fairness == pytest.approx(jain_index([1.0, 0.8]))
    assert f.too_many == {"t00": 0, "t01": 0, "t02": 1}


# -- CPU from /proc -----------------------------------------------------------------------------
def test_process_ticks_read_a_stat_line_whose_name_has_spaces_and_parentheses():
    line = "4242 (python -m (x)) S 17 4242 17 0 -1 4194304 100 0 0 0 250 31 0 0 20 0 9 0 1 2 3"
    assert process_ticks(line) == ProcessTicks(pid=4242, ppid=17, ticks=281)


def test_machine_ticks_leave_idle_and_iowait_out_of_busy():
    text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
    assert machine_ticks(text) == (160, 1000)


def test_tree_ticks_add_every_descendant_once():
    procs = [ProcessTicks(1, 0, 5), ProcessTicks(10, 1, 7), ProcessTicks(11, 10, 3), ProcessTicks(20, 1, 100)]
    assert tree_ticks(procs, [10]) == 10
    assert tree_ticks(procs, [10, 11, 999]) == 10  # a pid twice, one gone
