"""In-memory twin of the Redis rate limiter (same arithmetic, a clock you can drive)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.ratelimit.base import (
    DECREASE,
    FLOOR,
    IN_FLIGHT_RETRY,
    Grant,
    Limits,
    recovered,
    refill,
    wait_for_token,
)


@dataclass
class _Account:
    tokens: float | None = None
    ts: float = 0.0
    paused_until: float = 0.0
    factor: float = 1.0
    factor_ts: float = 0.0
    in_flight: dict[str, float] = field(default_factory=dict)


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self._mutex = threading.Lock()

    def acquire(self, account: str, limits: Limits, token: str) -> Grant:
        now = self._clock()
        with self._mutex:
            state = self._accounts.setdefault(account, _Account(ts=now, factor_ts=now))
            if now < state.paused_until:
                return Grant(None, state.paused_until - now, "paused")
            state.in_flight = {t: expiry for t, expiry in state.in_flight.items() if expiry > now}
            if limits.max_in_flight and len(state.in_flight) >= limits.max_in_flight:
                return Grant(None, IN_FLIGHT_RETRY, "in_flight")
            rate = limits.rate * recovered(state.factor, now - state.factor_ts)
            start = limits.burst if state.tokens is None else state.tokens
            tokens = refill(start, now - state.ts, rate, limits.burst)
            state.tokens, state.ts = tokens, now
            if tokens < 1:
                return Grant(None, wait_for_token(tokens, rate), "rate")
            state.tokens = tokens - 1
            if limits.max_in_flight:
                state.in_flight[token] = now + limits.lease
            return Grant(token)

    def release(self, account: str, token: str) -> None:
        with self._mutex:
            self._accounts.setdefault(account, _Account()).in_flight.pop(token, None)

    def pause(self, account: str, seconds: float) -> None:
        now = self._clock()
        with self._mutex:
            state = self._accounts.setdefault(account, _Account(ts=now, factor_ts=now))
            until = now + seconds
            if until <= state.paused_until:
                return
            factor = max(FLOOR, recovered(state.factor, now - state.factor_ts) * DECREASE)
            state.paused_until, state.tokens, state.ts = until, 0.0, until
            state.factor, state.factor_ts = factor, until
