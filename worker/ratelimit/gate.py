"""Plug the limiter into the KlickTipp client: every call (logins included) passes the gate.

A short wait is spent in place (a thread sleeping costs nothing but the slot); a long one — a pause
after a 429, or a deep queue behind a low rate — raises :class:`Throttled`, and the task is deferred
for that long without counting as a failed attempt, so the worker slot is free meanwhile. A bulk
task refused because live work waits (``why == "share"``) never waits in place: its slot is what the
live work may be waiting for.

Each call asks with its context (:class:`CallContext`): the task's lane, whether the task already
made a call (a follow-up goes first, and may wait longer in place, since deferring it then would
repeat the calls it made and spend the budget twice), and how long it may wait in place.

Spare tokens: when the gate knows the task running on the thread (a :class:`TaskScope`), a task's
first call also takes, if the bucket has them to spare beyond its own need, tokens for as many
follow-up calls as the thread's previous task made (:func:`spares_wanted`); those follow-ups then go
without a Redis round trip of their own, and what is left is given back in the task's closing round
trip. Like a call already in flight, a prepaid follow-up goes even if a pause began meanwhile. Not
with a cap on calls in flight: each call needs a slot of its own, asked for anyway.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ktsync.config.model import RateSettings
from ktsync.core.errors import KtsyncError
from ktsync.core.lanes import Lane
from ktsync.worker.klicktipp.errors import RateLimited
from ktsync.worker.klicktipp.http import CallRecord
from ktsync.worker.ratelimit.base import Limits, RateLimiter

log = logging.getLogger(__name__)

# A waiting call asks again at least this often: it notices live work waiting (and steps aside) soon.
MAX_NAP = 0.25


class Throttled(KtsyncError):
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
    patience: float = RateSettings.max_wait  # the runtime passes the configured rate.max_wait


MAX_SPARE = 3  # tokens a task's first call takes ahead, at most, for the task's next calls


class TaskScope(Protocol):
    """The task running on this thread, as the gate sees it (the runtime's ``Telemetry``)."""

    def current(self) -> object | None:
        """The running task (an object that stays the same for the whole task); None outside one."""
        ...

    def at_end(self, stage: Callable[[Any], None]) -> None:
        """Have ``stage(pipe)`` add its writes to the task's closing round trip."""
        ...


def spares_wanted(previous_followups: int) -> int:
    """Spare tokens a task's first call asks for: as many as the thread's previous task made
    follow-up calls (a queue's tasks tend to be alike: a new contact makes one), at most MAX_SPARE.
    Pure."""
    return max(0, min(MAX_SPARE, previous_followups))


@dataclass
class _Book:
    """What the gate knows of one task on one thread."""

    task: object
    expect: int  # spare tokens its first call asks for
    spare: int = 0  # in hand
    followups: int = 0  # calls after its first
    closing: bool = False  # the give-back of what is left is staged in the task's closing round trip


class _Spares:
    """Spare tokens per task, per thread (see the module doc)."""

    def __init__(self, limiter: RateLimiter, account: str, limits: Limits, scope: TaskScope) -> None:
        self._limiter, self._account, self._limits, self._scope = limiter, account, limits, scope
        self._local = threading.local()

    def book(self) -> _Book | None:
        """The running task's book (a new one at its first call); None outside a task."""
        task = self._scope.current()
        if task is None:
            return None
        book: _Book | None = getattr(self._local, "book", None)
        if book is None or book.task is not task:
            book = self._local.book = _Book(task, spares_wanted(book.followups if book else 0))
        return book

    def took(self, book: _Book, count: int) -> None:
        book.spare += count
        if count and not book.closing:
            book.closing = True
            self._scope.at_end(lambda pipe: self._give_back(book, pipe))

    def _give_back(self, book: _Book, pipe: Any) -> None:
        left, book.spare = book.spare, 0
        self._limiter.give_back(self._account, self._limits, left, pipe=pipe)


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
    scope: TaskScope | None = None,
) -> Callable[[str], contextlib.AbstractContextManager[object]]:
    """The client's ``gate``: hold a token and an in-flight slot around each call.

    ``token_prefix`` names the holder of in-flight slots (the worker's session), so that the slots of
    a worker that died can be given back at once instead of after their lease. ``scope``: the task
    running on the thread, for spare tokens (none without it)."""
    spares = (
        _Spares(limiter, account, limits, scope) if scope is not None and not limits.max_in_flight else None
    )

    @contextlib.contextmanager
    def gate(_operation: str) -> Iterator[object]:
        ask = context()
        book = spares.book() if spares is not None else None
        if book is not None and ask.followup:
            book.followups += 1
            if book.spare > 0:  # paid for by the task's first call
                book.spare -= 1
                yield None
                return
        token = f"{token_prefix}{secrets.token_hex(8)}"
        started = clock()
        refused = False
        wanted = book.expect if book is not None and not ask.followup else 0
        while not (
            grant := limiter.acquire(
                account, limits, token, lane=ask.lane, followup=ask.followup, spare=wanted
            )
        ).granted:
            refused = True
            waited = clock() - started
            if waited + grant.wait > ask.patience or (grant.why == "share" and not ask.followup):
                raise Throttled(grant.wait, grant.why)
            sleep(min(grant.wait, MAX_NAP))
        if on_wait is not None and refused:  # a call granted at once did not wait (however slow Redis was)
            on_wait(clock() - started)
        if spares is not None and book is not None:
            spares.took(book, grant.spare)
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
