"""The retry decision: a table from (error, attempt) to retry-after-N or dead-letter-with-reason."""

from __future__ import annotations

import random

import pytest

from ktsync.core.contract import ContractError, FieldError
from ktsync.worker.klicktipp.errors import (
    AuthError,
    ConflictError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
    UnsubscribedError,
    ValidationError,
)
from ktsync.worker.locks import LockBusy
from ktsync.worker.ratelimit import Throttled
from ktsync.worker.retry import Action, RetryPolicy, compute_backoff, decide
from ktsync.worker.sync.mapping import MappingConfigError, MappingError, Problem

POLICY = RetryPolicy(max_attempts=5, min_backoff=1.0, max_backoff=60.0)
OP = "api.subscriber.create"


@pytest.mark.parametrize(
    ("error", "attempt", "action", "reason"),
    [
        (ServerError("boom", operation=OP, status=503), 1, Action.RETRY, "server"),
        (TransportError("refused", operation=OP), 2, Action.RETRY, "transport"),
        (RequestTimeout("slow", operation=OP), 4, Action.RETRY, "timeout"),
        (ServerError("boom", operation=OP, status=503), 5, Action.DEAD_LETTER, "retries_exhausted"),
        (RateLimited("slow down", operation=OP, status=429, retry_after=7), 1, Action.RETRY, "rate_limited"),
        (AuthError("denied", operation=OP, status=403), 1, Action.DEAD_LETTER, "auth"),
        (ValidationError("bad", operation=OP, status=406, error=8), 1, Action.DEAD_LETTER, "validation"),
        (ConflictError("taken", operation=OP, status=406, error=507), 1, Action.DEAD_LETTER, "conflict"),
        (
            UnsubscribedError("gone", operation=OP, status=406, error=10, code=4),
            1,
            Action.DEAD_LETTER,
            "unsubscribed",
        ),
        (ContractError([FieldError("email", "bad")]), 1, Action.DEAD_LETTER, "invalid_message"),
        (
            MappingError([Problem("website", "fieldWebsite", "www.x", "no scheme")]),
            1,
            Action.DEAD_LETTER,
            "mapping",
        ),
        (MappingConfigError("no such field"), 1, Action.DEAD_LETTER, "config"),
        (KeyError("bug"), 1, Action.DEAD_LETTER, "unexpected"),
    ],
)
def test_decision_table(error: BaseException, attempt: int, action: Action, reason: str) -> None:
    decision = decide(error, attempt, POLICY, random.Random(1))
    assert (decision.action, decision.reason) == (action, reason)


def test_a_429_waits_out_retry_after_without_using_up_an_attempt() -> None:
    error = RateLimited("slow down", operation=OP, status=429, retry_after=7)
    decisions = [decide(error, POLICY.max_attempts, POLICY, random.Random(seed)) for seed in range(50)]
    assert all(d.action is Action.RETRY and not d.counts for d in decisions)  # even at the last attempt
    assert all(7 <= d.delay <= 8 for d in decisions)  # the pause, plus a spread of the wake-ups


@pytest.mark.parametrize(
    ("error", "reason"),
    [(LockBusy("contact:x"), "lock_busy"), (Throttled(3.0, "rate"), "throttled")],
)
def test_waiting_for_a_contact_or_the_budget_is_no_failure(error: Exception, reason: str) -> None:
    decision = decide(error, POLICY.max_attempts, POLICY, random.Random(1))
    assert (decision.action, decision.reason, decision.counts) == (Action.RETRY, reason, False)


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 20])
def test_backoff_has_full_jitter_below_an_exponential_cap(attempt: int) -> None:
    ceiling = min(POLICY.max_backoff, POLICY.min_backoff * 2 ** (attempt - 1))
    delays = [compute_backoff(attempt, POLICY, random.Random(seed)) for seed in range(200)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.8  # spread over the whole window, not bunched at the cap
    assert min(delays) < ceiling * 0.2
