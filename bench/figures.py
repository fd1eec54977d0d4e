"""The tenants bench's figures from plain data: percentiles, Jain's index, per-account rates from the fake's log.

Pure functions; ``bench.tenants`` feeds them what it measured (latencies, the fake's request log).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOO_MANY = 429


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``, as ``bench.lanes`` computes it;
    NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when every x is equal, 1/n when one takes it all.

    The x are each tenant's achieved rate as a share of its budget. NaN for no values; 1 when all
    are 0 (nobody got anything, equally).
    """
    xs = list(values)
    if not xs:
        return math.nan
    squares = sum(x * x for x in xs)
    return 1.0 if squares == 0 else sum(xs) ** 2 / (len(xs) * squares)


@dataclass(frozen=True)
class Window:
    """A span of the server's clock (``time.time()``), in seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    def holds(self, ts: float) -> bool:
        return self.start <= ts <= self.end


def accepted_calls(log: Iterable[Mapping[str, Any]], window: Window) -> Counter[str]:
    """Requests the fake let through (anything but a 429) per account, arrived within ``window``.

    Requests of no account (unauthenticated) are left out.
    """
    return Counter(
        str(entry["account"])
        for entry in log
        if entry.get("account") is not None
        and entry["status"] != TOO_MANY
        and window.holds(float(entry["ts"]))
    )


def rates(log: Iterable[Mapping[str, Any]], window: Window) -> dict[str, float]:
    """Accepted requests/s per account over ``window``."""
    return {account: n / window.seconds for account, n in accepted_calls(log, window).items()}


def refusals(log: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """429s per account over the whole log."""
    return Counter(
        str(entry["account"]) for entry in log if entry["status"] == TOO_MANY and entry.get("account")
    )


def aggregate_share(achieved: Mapping[str, float], capacity: Mapping[str, float]) -> float:
    """What all tenants got together as a share of what they could have: Σ achieved / Σ capacity.

    A tenant's capacity is its budget while it has a backlog, else its demand (calls/s its work
    needed): no scheduler can give a tenant more than it asks for.
    """
    total = sum(capacity.values())
    return math.nan if total <= 0 else sum(achieved.get(name, 0.0) for name in capacity) / total
