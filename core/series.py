"""An hour of per-lane history in minute windows (KlickTipp calls, 429s, tasks done, sync latency) for the console's charts.

Written by every worker in the round trip that ends a task (:func:`stage`), read by the operator
console (:func:`read`, :func:`read_many`); :class:`MemorySeries` is the in-memory twin.

Key layout (``{p}`` a tenant's key prefix, ``{t}`` the Unix second a window starts at, a multiple of
:data:`STEP`; ``{lane}`` one of :data:`ktsync.core.lanes.LANES`):

* ``{p}:series:{t}``  hash, one per window: ``calls|{lane}`` (KlickTipp calls), ``throttled|{lane}``
  (calls KlickTipp answered 429), ``done|{lane}`` (tasks that reached an outcome: not a retry, a deferral or a dead letter),
  ``latency_sum|{lane}`` (seconds, float) and ``latency_count|{lane}`` (changes applied with a known
  enqueue time). Only non-zero fields are written. Each write sets the key to expire
  :data:`HORIZON` seconds after its window closes (by the writer's clock), so at most
  ``HORIZON / STEP + 1`` windows exist per prefix, one more per minute the writers' clocks disagree
  by: bounded without any clean-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis

from ktsync.core.lanes import LANES

STEP = 60  # seconds per window
HORIZON = 3600  # seconds of history kept and read
FIELDS = ("calls", "throttled", "done", "latency_sum", "latency_count")


@dataclass(frozen=True)
class Point:
    """One window of one lane: ``t`` its start (Unix seconds), ``step`` its width; the newest is partial."""

    t: int
    calls: int = 0
    throttled: int = 0
    done: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    step: int = STEP

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.step

    @property
    def throttled_per_s(self) -> float:
        return self.throttled / self.step

    @property
    def done_per_s(self) -> float:
        return self.done / self.step

    @property
    def latency_mean(self) -> float | None:
        """Mean sync latency (seconds) of the changes applied in the window; None when there were none."""
        return self.latency_sum / self.latency_count if self.latency_count else None


# --- pure decisions ---------------------------------------------------------------------------------


def window_of(now: float, step: int = STEP) -> int:
    """The start of the window ``now`` falls in."""
    return int(now // step) * step


def windows(now: float, *, horizon: int = HORIZON, step: int = STEP) -> list[int]:
    """The starts of the windows covering the last ``horizon`` seconds, oldest first, the current one last."""
    if step <= 0 or horizon < step:
        raise ValueError(f"need 0 < step <= horizon, got step={step}, horizon={horizon}")
    last = window_of(now, step)
    return list(range(last - (horizon // step - 1) * step, last + step, step))


def read_windows(now: float, *, horizon: int = HORIZON, step: int = STEP) -> list[int]:
    """The base windows to read for ``horizon // step`` points of ``step`` seconds (a multiple of
    :data:`STEP`), oldest first: the points' windows are aligned on multiples of ``step``."""
    if step <= 0 or step % STEP or horizon % step:
        raise ValueError(f"step must be a multiple of {STEP} that divides horizon, got {step}, {horizon}")
    return list(range(windows(now, horizon=horizon, step=step)[0], window_of(now) + STEP, STEP))


def ttl_of(now: float) -> int:
    """Seconds until the window ``now`` falls in is older than :data:`HORIZON` (in (HORIZON, HORIZON+STEP])."""
    return max(1, math.ceil(window_of(now) + STEP + HORIZON - now))


def series_key(prefix: str, t: int) -> str:
    return f"{prefix}:series:{t}"


def increments(
    lane: str, *, calls: int = 0, throttled: int = 0, done: int = 0, latency: float | None = None
) -> dict[str, int | float]:
    """The hash fields one write adds to (only the non-zero ones)."""
    counts: dict[str, int | float] = {"calls": calls, "throttled": throttled, "done": done}
    if latency is not None and math.isfinite(latency):
        counts.update(latency_sum=max(0.0, latency), latency_count=1)
    return {f"{name}|{lane}": value for name, value in counts.items() if value}


def points(
    raws: Sequence[Mapping[Any, Any]], starts: Sequence[int], *, step: int = STEP
) -> dict[str, list[Point]]:
    """Per lane, one Point per ``step`` from the raw hashes of the base windows starting at ``starts``
    (see :func:`read_windows`; several base windows add up to one point)."""
    sums = {
        lane.value: {t: dict.fromkeys(FIELDS, 0.0) for t in _point_starts(starts, step)} for lane in LANES
    }
    for t, raw in zip(starts, raws, strict=True):
        for key, value in raw.items():
            name, _, lane = _text(key).partition("|")
            if lane in sums and name in FIELDS:
                sums[lane][window_of(t, step)][name] += float(_text(value))
    return {
        lane: [_point(t, fields, step) for t, fields in sorted(by_t.items())] for lane, by_t in sums.items()
    }


def throughput(series: Sequence[Point], now: float) -> float:
    """Tasks done per second lately: the last full window and the elapsed part of the current one."""
    if not series:
        return 0.0
    recent = series[-2:]
    elapsed = (len(recent) - 1) * recent[0].step + min(recent[-1].step, max(1.0, now - recent[-1].t))
    return sum(p.done for p in recent) / elapsed


def _point_starts(starts: Sequence[int], step: int) -> list[int]:
    return sorted({window_of(t, step) for t in starts})


def _point(t: int, fields: Mapping[str, float], step: int) -> Point:
    return Point(
        t=t,
        calls=int(fields["calls"]),
        throttled=int(fields["throttled"]),
        done=int(fields["done"]),
        latency_sum=fields["latency_sum"],
        latency_count=int(fields["latency_count"]),
        step=step,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- Redis ------------------------------------------------------------------------------------------


def stage(
    pipe: Any,
    prefix: str,
    lane: str,
    now: float,
    *,
    calls: int = 0,
    throttled: int = 0,
    done: int = 0,
    latency: float | None = None,
) -> None:
    """Add one write to ``pipe`` (the caller executes it): one HINCRBY/HINCRBYFLOAT per non-zero field
    and one EXPIRE; nothing when all are zero."""
    fields = increments(lane, calls=calls, throttled=throttled, done=done, latency=latency)
    if not fields:
        return
    key = series_key(prefix, window_of(now))
    for field, value in fields.items():
        if isinstance(value, float):
            pipe.hincrbyfloat(key, field, value)
        else:
            pipe.hincrby(key, field, value)
    pipe.expire(key, ttl_of(now))


def read(
    client: redis.Redis, prefix: str, now: float, *, horizon: int = HORIZON, step: int = STEP
) -> dict[str, list[Point]]:
    """Per lane, the last ``horizon`` seconds in points of ``step`` seconds, oldest first, zeros where
    nothing happened: one pipelined round trip."""
    return read_many(client, [prefix], now, horizon=horizon, step=step)[prefix]


def read_many(
    client: redis.Redis, prefixes: Iterable[str], now: float, *, horizon: int = HORIZON, step: int = STEP
) -> dict[str, dict[str, list[Point]]]:
    """:func:`read` for several tenants' prefixes, in one pipelined round trip: prefix -> lane -> points."""
    wanted, starts = list(dict.fromkeys(prefixes)), read_windows(now, horizon=horizon, step=step)
    pipe = client.pipeline(transaction=False)
    for prefix in wanted:
        for t in starts:
            pipe.hgetall(series_key(prefix, t))
    raws = cast(list[dict[bytes, bytes]], pipe.execute()) if wanted else []
    n = len(starts)
    return {p: points(raws[i * n : (i + 1) * n], starts, step=step) for i, p in enumerate(wanted)}


class Series(Protocol):
    """What writes and reads the series: :class:`RedisSeries` or its twin :class:`MemorySeries`."""

    def record(
        self, prefix: str, lane: str, now: float, *, calls: int = 0, throttled: int = 0, done: int = 0,
        latency: float | None = None,
    ) -> None: ...  # fmt: skip

    def read(
        self, prefix: str, now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, list[Point]]: ...

    def read_many(
        self, prefixes: Iterable[str], now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, dict[str, list[Point]]]: ...


class RedisSeries:
    """The series in Redis (workers write through :func:`stage` in their own round trip instead)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(
        self, prefix: str, lane: str, now: float, *, calls: int = 0, throttled: int = 0, done: int = 0,
        latency: float | None = None,
    ) -> None:  # fmt: skip
        pipe = self._redis.pipeline(transaction=False)
        stage(pipe, prefix, lane, now, calls=calls, throttled=throttled, done=done, latency=latency)
        pipe.execute()

    def read(
        self, prefix: str, now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, list[Point]]:
        return read(self._redis, prefix, now, horizon=horizon, step=step)

    def read_many(
        self, prefixes: Iterable[str], now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, dict[str, list[Point]]]:
        return read_many(self._redis, prefixes, now, horizon=horizon, step=step)


class MemorySeries:
    """The in-memory twin: the same windows and expiry, ``now`` as the clock."""

    def __init__(self) -> None:
        self._windows: dict[str, dict[str, float]] = {}
        self._expires: dict[str, float] = {}

    def record(
        self, prefix: str, lane: str, now: float, *, calls: int = 0, throttled: int = 0, done: int = 0,
        latency: float | None = None,
    ) -> None:  # fmt: skip
        fields = increments(lane, calls=calls, throttled=throttled, done=done, latency=latency)
        if not fields:
            return
        key = series_key(prefix, window_of(now))
        if self._expires.get(key, math.inf) <= now:
            self._windows.pop(key, None)
        window = self._windows.setdefault(key, {})
        for field, value in fields.items():
            window[field] = window.get(field, 0) + value
        self._expires[key] = now + ttl_of(now)

    def read(
        self, prefix: str, now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, list[Point]]:
        return self.read_many([prefix], now, horizon=horizon, step=step)[prefix]

    def read_many(
        self, prefixes: Iterable[str], now: float, *, horizon: int = HORIZON, step: int = STEP
    ) -> dict[str, dict[str, list[Point]]]:
        starts = read_windows(now, horizon=horizon, step=step)
        return {
            prefix: points([self._live(series_key(prefix, t), now) for t in starts], starts, step=step)
            for prefix in dict.fromkeys(prefixes)
        }

    def keys(self, now: float) -> list[str]:
        """The windows that exist at ``now`` (for tests of the bound)."""
        return sorted(key for key, expires in self._expires.items() if expires > now)

    def _live(self, key: str, now: float) -> Mapping[str, float]:
        return self._windows.get(key, {}) if self._expires.get(key, 0.0) > now else {}
