"""Decide what happens to a failed task: retry after a delay, or dead-letter with a reason. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ktsync.contract import ContractError
from worker.klicktipp.errors import AuthError, KlickTippError
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


def compute_backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, min * 2**(attempt-1))]."""
    ceiling = min(policy.max_backoff, policy.min_backoff * 2 ** max(attempt - 1, 0))
    return rng.uniform(0, ceiling)


def decide(error: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random) -> Decision:
    """``attempt`` counts the attempts made so far, this one included (1 for the first)."""
    if isinstance(error, ContractError):
        return Decision(Action.DEAD_LETTER, "invalid_message")
    if isinstance(error, MappingError):
        return Decision(Action.DEAD_LETTER, "mapping")
    if isinstance(error, MappingConfigError):
        return Decision(Action.DEAD_LETTER, "config")
    if isinstance(error, AuthError):
        # The client already logged in again once; looping would only lock the account.
        return Decision(Action.DEAD_LETTER, "auth")
    if isinstance(error, KlickTippError):
        if not error.retryable:
            return Decision(Action.DEAD_LETTER, error.reason)
        if attempt >= policy.max_attempts:
            return Decision(Action.DEAD_LETTER, "retries_exhausted")
        delay = error.retry_after if error.retry_after is not None else compute_backoff(attempt, policy, rng)
        return Decision(Action.RETRY, error.reason, delay)
    return Decision(Action.DEAD_LETTER, "unexpected")
