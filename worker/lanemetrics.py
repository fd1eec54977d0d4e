"""Per-lane measurements in Redis, written by every worker and read by `ktsync status` and `ktsync metrics`.

* Sync latency, from the moment a message was first enqueued (its ``ktsync_enqueued_at`` header) to
  the moment its change was applied, as a histogram per lane (``ktsync_sync_latency_seconds{lane}``).
* KlickTipp calls per lane — in total, and in 10-second windows for the share of the budget each lane
  got over the last minute.

Key layout (``{p}`` the key prefix, ``{lane}`` live or bulk):

* ``{p}:metrics:latency:{lane}``   hash: bucket upper bound (``"0.5"``, ..., ``"+Inf"``) -> count, not
  cumulative; ``sum`` (seconds) and ``count``
* ``{p}:metrics:lane_calls``       hash: lane -> KlickTipp calls
* ``{p}:metrics:lane_calls:{t}``   hash: lane -> calls in the window starting at Unix second ``t``
  (a multiple of :data:`WINDOW`), expiring after :data:`SHARE_HORIZON` plus a window
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from ktsync.core.lanes import LANES, Lane

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
WINDOW = 10  # seconds per call-count window
SHARE_HORIZON = 60  # seconds over which `ktsync status` reports each lane's share of the calls


def bucket_of(seconds: float) -> str:
    """The histogram bucket (its upper bound, as Prometheus writes it) that ``seconds`` falls into."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def stage_latency(pipe: Any, prefix: str, lane: Lane, seconds: float) -> None:
    """Add one latency observation to ``pipe`` (the caller executes it)."""
    if not math.isfinite(seconds):
        return
    seconds = max(0.0, seconds)
    key = f"{prefix}:metrics:latency:{lane.value}"
    pipe.hincrby(key, bucket_of(seconds), 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", seconds)


def stage_calls(pipe: Any, prefix: str, lane: Lane, calls: int, now: float) -> None:
    """Count ``calls`` KlickTipp calls for ``lane`` (total and in the current window)."""
    if calls <= 0:
        return
    pipe.hincrby(f"{prefix}:metrics:lane_calls", lane.value, calls)
    window = f"{prefix}:metrics:lane_calls:{int(now) // WINDOW * WINDOW}"
    pipe.hincrby(window, lane.value, calls)
    pipe.expire(window, SHARE_HORIZON + 2 * WINDOW)


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets (upper bound -> observations at or below it), as Prometheus exposes them."""

    buckets: tuple[tuple[str, int], ...]
    sum: float
    count: int


def read_latency(client: redis.Redis, prefix: str) -> dict[Lane, Histogram]:
    pipe = client.pipeline(transaction=False)
    for lane in LANES:
        pipe.hgetall(f"{prefix}:metrics:latency:{lane.value}")
    return {
        lane: _histogram(cast(dict[bytes, bytes], raw))
        for lane, raw in zip(LANES, pipe.execute(), strict=True)
    }


def _histogram(raw: Mapping[bytes, bytes]) -> Histogram:
    counts = {k.decode(): v for k, v in raw.items()}
    running, cumulative = 0, []
    for bound in [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]:
        running += int(counts.get(bound, 0))
        cumulative.append((bound, running))
    return Histogram(tuple(cumulative), float(counts.get("sum", 0)), int(counts.get("count", 0)))


def read_lane_calls(client: redis.Redis, prefix: str) -> dict[Lane, int]:
    raw = cast(dict[bytes, bytes], client.hgetall(f"{prefix}:metrics:lane_calls"))
    return {lane: int(raw.get(lane.value.encode(), 0)) for lane in LANES}


def recent_shares(client: redis.Redis, prefix: str, now: float) -> dict[Lane, float | None]:
    """Each lane's share of the KlickTipp calls over the last :data:`SHARE_HORIZON` seconds (None: no calls)."""
    start = int(now) // WINDOW * WINDOW
    pipe = client.pipeline(transaction=False)
    for t in range(start - SHARE_HORIZON + WINDOW, start + WINDOW, WINDOW):
        pipe.hgetall(f"{prefix}:metrics:lane_calls:{t}")
    totals = dict.fromkeys(LANES, 0)
    for raw in cast(list[dict[bytes, bytes]], pipe.execute()):
        for lane in LANES:
            totals[lane] += int(raw.get(lane.value.encode(), 0))
    calls = sum(totals.values())
    return {lane: (round(totals[lane] / calls, 3) if calls else None) for lane in LANES}
