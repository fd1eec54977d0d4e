"""Fault injection: per-account token-bucket rate limit, error rate, outage window, latency, garbage bodies.

Settings change through ``POST /_fake/faults`` with partial JSON (keys as in ``Faults``, plus
``outage_seconds`` to open an outage window starting now, and ``random_seed`` for reproducible
rolls). Times are the server's monotonic clock. The decisions are pure functions; ``FaultInjector``
only keeps the settings, the buckets and the random generator.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    """At most ``per_second`` requests per second per account, with bursts up to ``burst``."""

    per_second: float
    burst: int


@dataclass(frozen=True)
class Faults:
    """The active fault settings."""

    rate_limit: RateLimit | None = None
    error_rate: float = 0.0
    error_status: int = 503
    outage_until: float = 0.0
    latency_ms: float = 0.0
    session_ttl: float | None = None
    malformed_rate: float = 0.0
    retry_after: int | None = None  # the Retry-After of injected errors (and 429s), None: the bucket's own


@dataclass(frozen=True)
class TokenBucket:
    """Tokens left at time ``updated``."""

    tokens: float
    updated: float


@dataclass(frozen=True)
class Injected:
    """An injected error response instead of the real one."""

    status: int
    retry_after: int | None = None


def take_token(bucket: TokenBucket | None, limit: RateLimit, now: float) -> tuple[TokenBucket, int | None]:
    """Spend one token: the new bucket and ``None``, or the unchanged level and Retry-After seconds."""
    if bucket is None:
        tokens = float(limit.burst)
    else:
        tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.per_second)
    if tokens >= 1.0:
        return TokenBucket(tokens - 1.0, now), None
    return TokenBucket(tokens, now), max(1, math.ceil((1.0 - tokens) / limit.per_second))


def _number(name: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}")
    return float(value)


def _rate_limit(value: Any) -> RateLimit | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("rate_limit must be null or {per_second, burst}")
    per_second = _number("rate_limit.per_second", value.get("per_second"), low=0.001, high=1e9)
    burst = value.get("burst", max(1, math.ceil(per_second)))
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise ValueError("rate_limit.burst must be an integer >= 1")
    return RateLimit(per_second=per_second, burst=burst)


def updated_faults(current: Faults, changes: Mapping[str, Any], now: float) -> Faults:
    """``current`` with the partial ``changes`` applied; raises ValueError for bad input."""
    updates: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "rate_limit":
            updates[name] = _rate_limit(value)
        elif name in ("error_rate", "malformed_rate"):
            updates[name] = _number(name, value, low=0.0, high=1.0)
        elif name == "error_status":
            updates[name] = int(_number(name, value, low=400, high=599))
        elif name == "outage_seconds":
            updates["outage_until"] = now + _number(name, value, low=0.0, high=1e9)
        elif name == "latency_ms":
            updates[name] = _number(name, value, low=0.0, high=600_000.0)
        elif name == "session_ttl":
            updates[name] = None if value is None else _number(name, value, low=0.0, high=1e12)
        elif name == "retry_after":
            updates[name] = None if value is None else int(_number(name, value, low=0, high=1e9))
        elif name != "random_seed":
            raise ValueError(f"unknown fault setting {name!r}")
    return dataclasses.replace(current, **updates)


def faults_json(faults: Faults, now: float) -> dict[str, Any]:
    """The settings as JSON, with the outage as the seconds it still lasts."""
    limit = faults.rate_limit
    return {
        "rate_limit": None if limit is None else {"per_second": limit.per_second, "burst": limit.burst},
        "error_rate": faults.error_rate,
        "error_status": faults.error_status,
        "outage_seconds": max(0.0, round(faults.outage_until - now, 3)),
        "latency_ms": faults.latency_ms,
        "session_ttl": faults.session_ttl,
        "malformed_rate": faults.malformed_rate,
        "retry_after": faults.retry_after,
    }


class FaultInjector:
    """The current fault settings plus the per-account buckets and the random generator."""

    def __init__(self) -> None:
        self.settings = Faults()
        self._buckets: dict[str, TokenBucket] = {}
        self._rng = random.Random()

    def configure(self, changes: Mapping[str, Any], now: float) -> Faults:
        """Apply partial settings; a new rate limit starts with full buckets."""
        settings = updated_faults(self.settings, changes, now)
        if "random_seed" in changes:
            self._rng = random.Random(changes["random_seed"])
        if settings.rate_limit != self.settings.rate_limit:
            self._buckets.clear()
        self.settings = settings
        return settings

    def before(self, account: str, now: float) -> Injected | None:
        """The fault to answer with before handling a request, if any: outage, 429, random error."""
        settings = self.settings
        if now < settings.outage_until:
            return Injected(503)
        if settings.rate_limit is not None:
            bucket, retry_after = take_token(self._buckets.get(account), settings.rate_limit, now)
            self._buckets[account] = bucket
            if retry_after is not None:
                return Injected(429, settings.retry_after or retry_after)
        if settings.error_rate and self._rng.random() < settings.error_rate:
            return Injected(settings.error_status, settings.retry_after)
        return None

    def garble(self) -> bool:
        """Whether to replace this response with a 200 and a non-JSON body."""
        rate = self.settings.malformed_rate
        return bool(rate) and self._rng.random() < rate
