"""Writes a task holds back for its closing round trip, so that they cost no round trip of their own.

A task ends with one pipelined round trip (``WorkerRuntime.finish``: delivery guard, counters,
telemetry). A write that nothing in the task reads afterwards — the contact's commit, its outbound
entry — can go in that same round trip: the store hands it back as a :class:`Held` instead of
writing it, and the closing round trip stages every held write first, in order, in one MULTI.
"""

from __future__ import annotations

from typing import Any, Protocol


class Held(Protocol):
    def stage(self, pipe: Any) -> None:
        """Add the writes to ``pipe``, a Redis pipeline the caller executes (an in-memory twin
        writes at once)."""
        ...

    def lost(self) -> None:
        """The round trip failed (Redis away): keep what is owed, e.g. a lock release to retry."""
        ...
