"""Plug the limiter into the KlickTipp client: every call (logins included) passes the gate.

A short wait is spent in place (a thread sleeping costs nothing but the slot); a long one — a pause
after a 429, or a deep queue behind a low rate — raises :class:`Throttled`, and the task is deferred
for that long without counting as a failed attempt, so the worker slot is free meanwhile. A bulk
task refused because live work waits (``why == "share"``) never waits in place: its slot is what the
live work may be waiting for.

Each call asks with its context (:class:`CallContext`): the task's lane, whether the task already
made a call (a follow-up goes first, and may wait longer in place, since deferring it then would
repeat the calls it made and spend the budget twice), and how long it may wait in place.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ktsync.core.lanes import Lane
from ktsync.worker.klicktipp.errors import RateLimited
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.ratelimit.base import Limits, RateLimiter

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT = 2.0  # seconds a task may wait in place for the limiter
# A waiting call asks again at least this often: it notices live work waiting (and steps aside) soon.
MAX_NAP = 0.25


class Throttled(Exception):
    """The account is paused or its budget is spent for longer than a task should wait in place."""

    reason = "throttled"

    def __init__(self, wait: float, why: str) -> None:
        self.wait, self.why = wait, why
        super().__init__(f"KlickTipp budget: wait {wait:.2f}s ({why})")


@dataclass(frozen=True)
class CallContext:
    """Who is asking: the lane of the task, whether it already made a call, its patience (seconds)."""

    lane: Lane = Lane.LIVE
    followup: bool = False
    patience: float = DEFAULT_MAX_WAIT


def limiter_gate(
    limiter: RateLimiter,
    account: str,
    limits: Limits,
    *,
    context: Callable[[], CallContext] = CallContext,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[float], None] | None = None,
    token_prefix: str = "",
) -> Callable[[str], contextlib.AbstractContextManager[object]]:
    """The client's ``gate``: hold a token and an in-flight slot around each call.

    ``token_prefix`` names the holder of in-flight slots (the worker's session), so that the slots of
    a worker that died can be given back at once instead of after their lease."""

    @contextlib.contextmanager
    def gate(_operation: str) -> Iterator[object]:
        token = f"{token_prefix}{secrets.token_hex(8)}"
        started = clock()
        ask = context()
        while not (
            grant := limiter.acquire(account, limits, token, lane=ask.lane, followup=ask.followup)
        ).granted:
            waited = clock() - started
            if waited + grant.wait > ask.patience or (grant.why == "share" and not ask.followup):
                raise Throttled(grant.wait, grant.why)
            sleep(min(grant.wait, MAX_NAP))
        if on_wait is not None:
            on_wait(clock() - started)
        try:
            yield None
        finally:
            if limits.max_in_flight:  # without a cap no slot was taken: save the round trip
                limiter.release(account, token)

    return gate


def bounded(seconds: float, cap: float) -> float:
    """A server-chosen wait, never above ``cap`` (``rate.max_pause``): one ``Retry-After: 86400``
    must not stop every worker of the account for a day. Pure."""
    return min(max(seconds, 0.0), cap)


def pause_on_429(
    limiter: RateLimiter, account: str, *, max_pause: float, default_pause: float = 1.0
) -> Callable[[CallRecord], None]:
    """An observer: a 429 (or any Retry-After) pauses the whole account, for every worker."""

    def observe(record: CallRecord) -> None:
        error = record.error
        if isinstance(error, RateLimited):
            wanted = error.retry_after or default_pause
            if wanted > max_pause:
                log.warning("KlickTipp asked %s to wait %gs (Retry-After); pausing the account for %gs "
                            "(rate.max_pause)", record.operation, wanted, max_pause)  # fmt: skip
            limiter.pause(account, bounded(wanted, max_pause))

    return observe
