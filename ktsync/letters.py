"""Choosing dead letters and replaying or purging them: what ``ktsync dlq`` and the console share.

A selection is either letter ids or a filter (reason, KlickTipp code, source, since). Replays go through
the bulk lane by default (behind live changes, with its flow control) and the rate limiter like every
task; an entry stays in the store until its replayed task succeeds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ktsync.config.settings import Settings
from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.worker.deadletter import DeadLetter, DeadLetterStore, Filter

if TYPE_CHECKING:
    from ktsync.core.replay import Refetch, ReplayResult

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ALL = 10**9  # "every letter" as a list limit


class SelectionError(KtsyncError, ValueError):
    """A selection of dead letters that names nothing, or letters that are not there."""


def parse_since(value: str | None, now: float) -> float | None:
    """``2h``, ``30m``, ``1d`` ago, or an ISO 8601 time; None when not given; ValueError otherwise."""
    if not value or not value.strip():
        return None
    match = DURATION.match(value.strip())
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r}: use a duration like 2h or an ISO 8601 time") from None
    return moment.timestamp()


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operator means: ``ids``, or every letter the filter holds (``everything``
    with no criteria: all of them)."""

    ids: tuple[str, ...] = ()
    where: Filter = field(default_factory=Filter)
    everything: bool = False
    without_code: bool = (
        False  # only letters KlickTipp gave no error code (a group such as "retries_exhausted, -")
    )

    def names_something(self) -> bool:
        return bool(self.ids) or self.everything or self.without_code or self.where != Filter()

    def matches(self, letter: DeadLetter) -> bool:
        """Whether a letter is of the selection's filter (ids aside)."""
        return self.where.matches(letter) and (not self.without_code or letter.code is None)

    def describe(self) -> str:
        """The selection in words for logs and the audit trail (ids counted, never listed addresses)."""
        if self.ids:
            return f"{len(self.ids)} chosen"
        parts = [
            f"{name}={value}"
            for name, value in (
                ("reason", self.where.reason),
                ("code", "none" if self.without_code else self.where.code),
                ("source", self.where.source),
            )
            if value is not None
        ]
        if self.where.since is not None:
            parts.append(f"since={datetime.fromtimestamp(self.where.since).isoformat(timespec='seconds')}")
        return " ".join(parts) or "all"


def select(store: DeadLetterStore, selection: Selection) -> list[DeadLetter]:
    """The letters of a selection (newest first for a filter, in the given order for ids)."""
    if selection.ids:
        letters = [store.get(i) for i in selection.ids]
        missing = [i for i, letter in zip(selection.ids, letters, strict=True) if letter is None]
        if missing:
            raise SelectionError(f"no dead letter {', '.join(missing)}")
        return [letter for letter in letters if letter is not None]
    if not selection.names_something():
        raise SelectionError(
            "name dead letters by id, or select them with --all / --reason / --code / --source / --since"
        )
    return [letter for letter in store.list(selection.where, limit=ALL) if selection.matches(letter)]


def replay_letters(
    settings: Settings,
    tenant: str,
    store: DeadLetterStore,
    letters: Sequence[DeadLetter],
    *,
    dry_run: bool = False,
    refetch: Refetch | None = None,
    lane: str = "bulk",
) -> list[ReplayResult]:
    """Publish the letters' messages again (or, with ``refetch``, reload their contacts from the CRM)
    on ``lane`` of ``tenant``; each replay is counted on its letter as it is published. ``settings``: the
    deployment's. Raises :class:`~ktsync.producers.EnqueueError` when the broker fails (replaying
    again is safe: a letter stays until its replay succeeds)."""
    from ktsync.core.replay import replay as publish_again
    from ktsync.producers import Producer

    if dry_run:  # nothing is published: no broker connection
        return publish_again(letters, _NOTHING_SENT, dry_run=True, refetch=refetch)
    with Producer(settings, lane=lane, tenant=None if tenant == DEFAULT_TENANT else tenant) as producer:
        room = producer.wait_for_room if lane == "bulk" else None
        return publish_again(letters, producer, room=room, refetch=refetch, noted=store.note_replay)


class _NothingSent:
    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str:
        raise AssertionError("a dry run sends nothing")


_NOTHING_SENT = _NothingSent()


def refetch_for(env: Mapping[str, str], now: float | None = None) -> Refetch:
    """How a refetch reloads: the sources whose CRM API ``env`` (the tenant's) configures.
    Raises :class:`~ktsync.worker.crm.CrmConfigError` for a CRM variable set wrongly."""
    from ktsync.core.replay import Refetch
    from ktsync.worker.reconcile import crm_api_sources, no_crm_api

    return Refetch(sources=crm_api_sources(env), now=time.time() if now is None else now, why_not=no_crm_api)


def purge_letters(store: DeadLetterStore, letters: Sequence[DeadLetter]) -> int:
    """Delete the letters for good; how many were still there."""
    return store.remove_many([letter.id for letter in letters])
