"""Decide what happens to a failed task: retry after a delay, or dead-letter with a reason. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ktsync.config.model import RateSettings, RetrySettings
from ktsync.core.contract import ContractError
from ktsync.core.errors import UNEXPECTED, KtsyncError
from ktsync.worker.klicktipp.errors import AuthError, RateLimited
from ktsync.worker.locks import LockBusy
from ktsync.worker.ratelimit import Throttled
from ktsync.worker.ratelimit.gate import bounded
from ktsync.worker.sync.mapping import MappingConfigError, MappingError


class Action(StrEnum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = RetrySettings.max_attempts
    min_backoff: float = RetrySettings.min_backoff
    max_backoff: float = RetrySettings.max_backoff
    max_pause: float = RateSettings.max_pause  # cap of a server-chosen wait (Retry-After)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    delay: float = 0.0
    counts: bool = True  # whether this retry uses up one of the task's attempts
    asked: float | None = None  # the server-chosen wait, when the delay had to be capped below it
    defer: bool = False  # waiting for the budget: out of the worker slot, in the task's key queue


def compute_backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, min * 2**(attempt-1))]."""
    ceiling = min(policy.max_backoff, policy.min_backoff * 2 ** max(attempt - 1, 0))
    return rng.uniform(0, ceiling)


def _server_wait(error: BaseException, policy: RetryPolicy) -> tuple[float | None, float | None]:
    """The error's Retry-After capped by ``policy.max_pause``, and the value asked when it was capped."""
    asked = getattr(error, "retry_after", None)
    if not isinstance(asked, int | float):
        return None, None
    return bounded(asked, policy.max_pause), (asked if asked > policy.max_pause else None)


def _waiting(error: BaseException, policy: RetryPolicy, rng: random.Random) -> Decision | None:
    """Waiting is not failing: a busy contact, a spent budget, or KlickTipp's 429 (which paused the
    account for every worker) send the task back for a while without using up an attempt."""
    if isinstance(error, LockBusy):
        return Decision(Action.RETRY, error.reason, rng.uniform(0.2, 1.0), counts=False)
    if isinstance(error, Throttled):
        delay = error.wait + rng.uniform(0, 0.5)
        return Decision(Action.RETRY, error.reason, delay, counts=False, defer=True)
    if isinstance(error, RateLimited):
        wait, asked = _server_wait(error, policy)
        # Spread the wake-ups over a second after the pause instead of all at its end.
        delay = (wait or 1.0) + rng.uniform(0, 1.0)
        return Decision(Action.RETRY, error.reason, delay, counts=False, asked=asked, defer=True)
    return None


def decide(error: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random) -> Decision:
    """``attempt`` counts the attempts made so far, this one included (1 for the first).

    ktsync's errors (:class:`~ktsync.core.errors.KtsyncError`) say what they are through ``reason`` (a
    slug) and ``retryable``; any other exception is unexpected and dead-lettered with its traceback.
    """
    waiting = _waiting(error, policy, rng)
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
        return Decision(Action.DEAD_LETTER, error.reason)
    if not isinstance(error, KtsyncError):
        return Decision(Action.DEAD_LETTER, UNEXPECTED)
    if not error.retryable:
        return Decision(Action.DEAD_LETTER, error.reason)
    if attempt >= policy.max_attempts:
        return Decision(Action.DEAD_LETTER, "retries_exhausted")
    wait, asked = _server_wait(error, policy)
    delay = wait if wait is not None else compute_backoff(attempt, policy, rng)
    return Decision(Action.RETRY, error.reason, delay, asked=asked)
