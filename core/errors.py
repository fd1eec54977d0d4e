"""The one base of every error ktsync raises on purpose: ``KtsyncError``, which says what it means.

Each subclass declares two class attributes, read by the retry decision (``ktsync.worker.retry``)::

    reason     a stable slug: the dead-letter reason of a task that fails with it (part of the public
               interface: operators and ``ktsync dlq`` group by it, so a slug never changes)
    retryable  whether the same work may succeed later (False unless the class says so)

An error that declares no reason of its own (a configuration found invalid at start-up, which a task
never meets) keeps the base's ``unexpected``: the reason of every failure that does not say what it is.
Classify by type and these attributes, never by message text. Subclasses keep their other bases where
callers rely on them (``ValueError`` for the configuration errors).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["UNEXPECTED", "KtsyncError"]

UNEXPECTED = "unexpected"  # dead-lettered with the traceback: a bug, or a failure nobody foresaw


class KtsyncError(Exception):
    """Base of ktsync's own errors; ``reason`` and ``retryable`` say what happened (see the module)."""

    reason: ClassVar[str] = UNEXPECTED
    # Not a ClassVar: an error may know it only when raised (a CRM answer's status decides it).
    retryable: bool = False
