"""One KlickTipp rate limit for all workers: requests per second with a burst, a cap on calls in
flight, and a pause for the whole account when KlickTipp answers 429."""

from ktsync.worker.ratelimit.base import Grant, Limits, RateLimiter
from ktsync.worker.ratelimit.gate import Throttled, limiter_gate
from ktsync.worker.ratelimit.memory import MemoryRateLimiter
from ktsync.worker.ratelimit.redis import RedisRateLimiter

__all__ = [
    "Grant",
    "Limits",
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "Throttled",
    "limiter_gate",
]
