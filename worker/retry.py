"""Decide what happens to a failed task: retry after a delay, or dead-letter with a reason. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ktsync.contract import ContractError
from worker.klicktipp.errors import AuthError, RateLimited
from worker.locks import LockBusy
from worker.ratelimit import Throttled
from worker.sync.mapping import MappingConfigError, MappingError


class Action(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = 8
    min_backoff: float = 1.0
    max_backoff: float = 300.0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    delay: float = 0.0
    counts: bool = True  # whether this retry uses up one of the task's attempts


def compute_backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, min * 2**(attempt-1))]."""
    ceiling = min(policy.max_backoff, policy.min_backoff * 2 ** max(attempt - 1, 0))
    return rng.uniform(0, ceiling)


def _waiting(error: BaseException, rng: random.Random) -> Decision | None:
    """Waiting is not failing: a busy contact, a spent budget, or KlickTipp's 429 (which paused the
    account for every worker) send the task back for a while without using up an attempt."""
    if isinstance(error, LockBusy):
        return Decision(Action.RETRY, "lock_busy", rng.uniform(0.2, 1.0), counts=False)
    if isinstance(error, Throttled):
        return Decision(Action.RETRY, "throttled", error.wait + rng.uniform(0, 0.5), counts=False)
    if isinstance(error, RateLimited):
        # Spread the wake-ups over a second after the pause instead of all at its end.
        return Decision(
            Action.RETRY, "rate_limited", (error.retry_after or 1.0) + rng.uniform(0, 1.0), counts=False
        )
    return None


def decide(error: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random) -> Decision:
    """``attempt`` counts the attempts made so far, this one included (1 for the first).

    Errors say what they are through ``reason`` (a slug) and ``retryable``, as the KlickTipp client's
    errors do; anything without a reason is unexpected and dead-lettered with its traceback.
    """
    waiting = _waiting(error, rng)
    if waiting is not None:
        return waiting
    if isinstance(error, ContractError):
        return Decision(Action.DEAD_LETTER, "invalid_message")
    if isinstance(error, MappingError):
        return Decision(Action.DEAD_LETTER, "mapping")
    if isinstance(error, MappingConfigError):
        return Decision(Action.DEAD_LETTER, "config")
    if isinstance(error, AuthError):
        # The client already logged in again once; looping would only lock the account.
        return Decision(Action.DEAD_LETTER, "auth")
    reason = getattr(error, "reason", None)
    if not isinstance(reason, str):
        return Decision(Action.DEAD_LETTER, "unexpected")
    if not getattr(error, "retryable", False):
        return Decision(Action.DEAD_LETTER, reason)
    if attempt >= policy.max_attempts:
        return Decision(Action.DEAD_LETTER, "retries_exhausted")
    retry_after = getattr(error, "retry_after", None)
    delay = retry_after if isinstance(retry_after, int | float) else compute_backoff(attempt, policy, rng)
    return Decision(Action.RETRY, reason, delay)
