"""Plug the limiter into the KlickTipp client: every call (logins included) passes the gate.

A short wait is spent in place (a thread sleeping costs nothing but the slot); a long one — a pause
after a 429, or a deep queue behind a low rate — raises :class:`Throttled`, and the task goes back to
the queue for that long without counting as a failed attempt, so the worker slot is free meanwhile.
``max_wait`` may be a function: once a task has made its first call it waits longer in place, since
requeueing it then would repeat that call and spend the budget twice (measured in bench/rate.py).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator

from worker.klicktipp.errors import RateLimited
from worker.klicktipp.http import CallRecord
from worker.ratelimit.base import Limits, RateLimiter

DEFAULT_MAX_WAIT = 2.0  # seconds a task may wait in place for the limiter


class Throttled(Exception):
    """The account is paused or its budget is spent for longer than a task should wait in place."""

    reason = "throttled"

    def __init__(self, wait: float, why: str) -> None:
        self.wait, self.why = wait, why
        super().__init__(f"KlickTipp budget: wait {wait:.2f}s ({why})")


def limiter_gate(
    limiter: RateLimiter,
    account: str,
    limits: Limits,
    *,
    max_wait: float | Callable[[], float] = DEFAULT_MAX_WAIT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[float], None] | None = None,
) -> Callable[[str], contextlib.AbstractContextManager[object]]:
    """The client's ``gate``: hold a token and an in-flight slot around each call."""

    @contextlib.contextmanager
    def gate(_operation: str) -> Iterator[object]:
        token = secrets.token_hex(8)
        started = clock()
        patience = max_wait() if callable(max_wait) else max_wait
        while not (grant := limiter.acquire(account, limits, token)).granted:
            waited = clock() - started
            if waited + grant.wait > patience:
                raise Throttled(grant.wait, grant.why)
            sleep(grant.wait)
        if on_wait is not None:
            on_wait(clock() - started)
        try:
            yield None
        finally:
            if limits.max_in_flight:  # without a cap no slot was taken: save the round trip
                limiter.release(account, token)

    return gate


def pause_on_429(
    limiter: RateLimiter, account: str, default_pause: float = 1.0
) -> Callable[[CallRecord], None]:
    """An observer: a 429 (or any Retry-After) pauses the whole account, for every worker."""

    def observe(record: CallRecord) -> None:
        error = record.error
        if isinstance(error, RateLimited):
            limiter.pause(account, error.retry_after or default_pause)

    return observe
