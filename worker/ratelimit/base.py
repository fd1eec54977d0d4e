"""The limiter's value objects, its interface, and the pure token-bucket arithmetic both backends use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ktsync.core.lanes import Lane

DEFAULT_RATE = 5.0
DEFAULT_BURST = 10
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_LEASE = 60.0  # seconds an in-flight slot survives a worker that died during the call
# After a 429 the account's rate is cut to this share (multiplicative decrease) and then recovers by
# RECOVERY of the configured rate per second (additive increase): a limiter set above KlickTipp's real
# budget settles just below it instead of hitting 429 after 429 (measured in bench/rate.py).
# KlickTipp sees our requests a little later than we grant them, and not evenly: with a bucket exactly
# as fast and as deep as the server's, any early arrival is a 429. So the limiter runs at 97 % of the
# configured rate and keeps one token of the burst in reserve: the server's bucket gains slack instead.
RATE_MARGIN = 0.97
DECREASE = 0.7
RECOVERY = 0.02
FLOOR = 0.05


DEFAULT_BULK_SHARE = 0.25
# While live work waits and bulk's share is 0, a bulk task asks again after this long.
SHARE_RECHECK = 0.25


@dataclass(frozen=True)
class Limits:
    """Requests per second, how many may go at once after a quiet spell, and how many at a time."""

    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # 0 = no cap
    lease: float = DEFAULT_LEASE
    bulk_share: float = 1.0  # share of the rate bulk work may use while live work waits (1: no limit)


def with_margin(per_second: float, burst: int, max_in_flight: int, bulk_share: float = 1.0) -> Limits:
    """The limits to enforce for a configured budget (see RATE_MARGIN)."""
    return Limits(
        rate=per_second * RATE_MARGIN,
        burst=max(1, burst - 1),
        max_in_flight=max_in_flight,
        bulk_share=bulk_share,
    )


def tokens_needed(burst: int, *, followup: bool) -> int:
    """Tokens that must be in the bucket for a call to go.

    A task's first call leaves one token for the next call of a task already under way: work that
    has started finishes first, instead of waiting in a worker slot behind new work (and possibly
    being requeued, which would repeat the calls it made)."""
    return 1 if followup or burst < 2 else 2


@dataclass(frozen=True)
class Grant:
    """The answer to "may I call now?": a slot token, or how long to wait before asking again."""

    token: str | None
    wait: float = 0.0
    why: str = ""  # "", "rate", "in_flight", "paused"
    spare: int = 0  # tokens taken ahead for the caller's next calls (see ``spare_tokens``)

    @property
    def granted(self) -> bool:
        return self.token is not None


class RateLimiter(Protocol):
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
        """Take one request token and one in-flight slot (named ``token``), or say how long to wait.

        ``lane`` and ``followup`` decide who goes first: calls of tasks under way, then live, then
        bulk — which gets at most ``limits.bulk_share`` of the rate while live work waits (why
        ``"share"``). ``spare``: up to that many more tokens to take for the caller's next calls,
        when the bucket can spare them (see :func:`spare_tokens`)."""
        ...

    def release(self, account: str, token: str) -> None:
        """Give the in-flight slot back."""
        ...

    def give_back(self, account: str, limits: Limits, count: int, *, pipe: Any = None) -> None:
        """Return ``count`` spare tokens that were taken ahead and not used (never above the burst,
        never into a pause); staged on ``pipe``, a Redis pipeline the caller executes, when given."""
        ...

    def pause(self, account: str, seconds: float) -> None:
        """Stop every worker from calling for ``seconds`` (KlickTipp said 429 / Retry-After)."""
        ...


def spare_tokens(tokens: float, need: int, wanted: int, *, shared: bool, cap: int) -> int:
    """Tokens a granted call may take ahead for its task's next calls, beside its own: only what the
    bucket holds beyond what this call needed (so a call never waits for its spares, and the token a
    first call leaves for tasks under way stays), none while bulk draws on its share, none with a
    cap on calls in flight (every call needs a slot of its own, asked for anyway). Pure."""
    if shared or cap > 0 or wanted <= 0:
        return 0
    return max(0, min(wanted, int(tokens - need)))


def recovered(factor: float, elapsed: float) -> float:
    """The rate factor ``elapsed`` seconds after its last cut (back to 1 at RECOVERY per second)."""
    return min(1.0, factor + max(elapsed, 0.0) * RECOVERY)


def refill(tokens: float, elapsed: float, rate: float, burst: int) -> float:
    """Tokens in the bucket after ``elapsed`` seconds at ``rate`` (never above the burst)."""
    return min(float(burst), tokens + max(elapsed, 0.0) * rate)


def wait_for_token(tokens: float, rate: float, need: int = 1) -> float:
    """Seconds until ``need`` whole tokens are there."""
    return max(0.0, (need - tokens) / rate) if tokens < need else 0.0


IN_FLIGHT_RETRY = 0.01  # seconds: a call in flight ends in milliseconds against a healthy API
