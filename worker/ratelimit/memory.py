"""In-memory twin of the Redis rate limiter (same arithmetic, a clock you can drive)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktsync.core.lanes import Lane
from ktsync.worker.ratelimit.base import (
    DECREASE,
    FLOOR,
    IN_FLIGHT_RETRY,
    SHARE_RECHECK,
    Grant,
    Limits,
    recovered,
    refill,
    spare_tokens,
    tokens_needed,
    wait_for_token,
)

LIVE_MARK_MARGIN = 0.1  # seconds a refused live call stays "waiting" beyond its own wait


@dataclass
class _Account:
    tokens: float | None = None
    ts: float = 0.0
    paused_until: float = 0.0
    factor: float = 1.0
    factor_ts: float = 0.0
    live_until: float = 0.0
    bulk: float = 0.0
    bulk_ts: float = 0.0
    in_flight: dict[str, float] = field(default_factory=dict)


class MemoryRateLimiter:
    """``live_pending``: how many messages wait in the live queue (the Redis limiter reads its list)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, live_pending: Callable[[], int] = lambda: 0
    ) -> None:
        self._clock = clock
        self._live_pending = live_pending
        self._accounts: dict[str, _Account] = {}
        self._mutex = threading.Lock()

    def acquire(
        self,
        account: str,
        limits: Limits,
        token: str,
        *,
        lane: Lane = Lane.LIVE,
        followup: bool = False,
        spare: int = 0,
    ) -> Grant:
        now = self._clock()
        live = lane is Lane.LIVE
        with self._mutex:
            state = self._accounts.setdefault(account, _Account(ts=now, factor_ts=now, bulk_ts=now))
            if now < state.paused_until:
                return Grant(None, state.paused_until - now, "paused")
            state.in_flight = {t: expiry for t, expiry in state.in_flight.items() if expiry > now}
            if limits.max_in_flight and len(state.in_flight) >= limits.max_in_flight:
                if live:
                    state.live_until = now + IN_FLIGHT_RETRY + LIVE_MARK_MARGIN
                return Grant(None, IN_FLIGHT_RETRY, "in_flight")
            rate = limits.rate * recovered(state.factor, now - state.factor_ts)
            start = limits.burst if state.tokens is None else state.tokens
            tokens = refill(start, now - state.ts, rate, limits.burst)
            state.tokens, state.ts = tokens, now
            shared = (
                not live
                and not followup
                and limits.bulk_share < 1
                and (state.live_until > now or self._live_pending() > 0)
            )
            if shared:
                state.bulk = min(1.0, state.bulk + max(0.0, now - state.bulk_ts) * rate * limits.bulk_share)
                state.bulk_ts = now
                if state.bulk < 1:
                    share_rate = rate * limits.bulk_share
                    wait = (1 - state.bulk) / share_rate if share_rate > 0 else SHARE_RECHECK
                    return Grant(None, wait, "share")
            need = tokens_needed(limits.burst, followup=followup)
            if tokens < need:
                wait = wait_for_token(tokens, rate, need)
                if live:
                    state.live_until = now + wait + LIVE_MARK_MARGIN
                return Grant(None, wait, "rate")
            extra = spare_tokens(tokens, need, spare, shared=shared, cap=limits.max_in_flight)
            state.tokens = tokens - 1 - extra
            state.bulk, state.bulk_ts = (state.bulk - 1 if shared else 0.0), now
            if live:
                state.live_until = 0.0
            if limits.max_in_flight:
                state.in_flight[token] = now + limits.lease
            return Grant(token, spare=extra)

    def release(self, account: str, token: str) -> None:
        with self._mutex:
            self._accounts.setdefault(account, _Account()).in_flight.pop(token, None)

    def give_back(self, account: str, limits: Limits, count: int, *, pipe: Any = None) -> None:
        now = self._clock()
        with self._mutex:
            state = self._accounts.get(account)
            if state is None or state.tokens is None or count <= 0 or now < state.paused_until:
                return
            state.tokens = min(float(limits.burst), state.tokens + count)

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
