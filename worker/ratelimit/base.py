"""The limiter's value objects, its interface, and the pure token-bucket arithmetic both backends use."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

DEFAULT_RATE = 5.0
DEFAULT_BURST = 10
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_LEASE = 60.0  # seconds an in-flight slot survives a worker that died during the call


@dataclass(frozen=True)
class Limits:
    """Requests per second, how many may go at once after a quiet spell, and how many at a time."""

    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # 0 = no cap
    lease: float = DEFAULT_LEASE


@dataclass(frozen=True)
class Grant:
    """The answer to "may I call now?": a slot token, or how long to wait before asking again."""

    token: str | None
    wait: float = 0.0
    why: str = ""  # "", "rate", "in_flight", "paused"

    @property
    def granted(self) -> bool:
        return self.token is not None


class RateLimiter(Protocol):
    def acquire(self, account: str, limits: Limits, token: str) -> Grant:
        """Take one request token and one in-flight slot (named ``token``), or say how long to wait."""
        ...

    def release(self, account: str, token: str) -> None:
        """Give the in-flight slot back."""
        ...

    def pause(self, account: str, seconds: float) -> None:
        """Stop every worker from calling for ``seconds`` (KlickTipp said 429 / Retry-After)."""
        ...


def refill(tokens: float, elapsed: float, limits: Limits) -> float:
    """Tokens in the bucket after ``elapsed`` seconds (never above the burst)."""
    return min(float(limits.burst), tokens + max(elapsed, 0.0) * limits.rate)


def wait_for_token(tokens: float, limits: Limits) -> float:
    """Seconds until one whole token is there."""
    return max(0.0, (1.0 - tokens) / limits.rate) if tokens < 1 else 0.0


IN_FLIGHT_RETRY = 0.01  # seconds: a call in flight ends in milliseconds against a healthy API


def ceil_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
