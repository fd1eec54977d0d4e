"""bench.run's ideal for a new contact, from the same run's baselines."""

from __future__ import annotations

import math

import pytest

from bench.roundtrips import describe, parse_commands
from bench.run import ideal_rate, share


def test_the_ideal_is_one_dispatch_plus_two_http_calls() -> None:
    # Given a no-op task at 500/s (2 ms) and a one-call task at 250/s (4 ms: the call costs 2 ms)
    # Then a new contact (one dispatch, two calls) ideally takes 6 ms
    assert ideal_rate(500.0, 250.0) == pytest.approx(1000 / 6)
    assert share(150.0, ideal_rate(500.0, 250.0)) == pytest.approx(0.9)


def test_an_http_call_costing_nothing_makes_the_ideal_unbounded() -> None:
    assert math.isinf(ideal_rate(100.0, 200.0))


def test_round_trips_are_listed_by_their_commands() -> None:
    packed = (
        b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*4\r\n$4\r\nEVAL\r\n$3\r\nlua\r\n$1\r\n1\r\n$13\r\nns:lock:c:501\r\n"
    )
    assert describe(parse_commands(packed)) == "INCR EVAL(lock:c)"
