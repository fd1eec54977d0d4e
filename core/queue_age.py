"""How old the oldest pending message of a queue is, whoever produced it: header stamps and first-seen checkpoints.

ktsync's own producer stamps ``ktsync_enqueued_at``; Celery's protocol carries no send time, so the
messages of other producers (plain ``send_task``, celery-node, raw ``LPUSH``) say nothing. Whoever
samples a queue — ``ktsync status``, every metrics scrape, every worker every
:data:`SAMPLE_INTERVAL` seconds — therefore records **checkpoints**: the newest message of each broker
list (its head, identified by its kombu delivery tag) with the Redis server's time it was first seen.

The lists are FIFO (``LPUSH`` in, ``BRPOP`` out), so a message older than a checkpoint that is still
waiting was already waiting when that checkpoint was seen: the oldest pending message is at least
``now - seen`` old, for the checkpoint nearest the tail still in the list. That bound is exact to the
sampling interval while fewer than :data:`MAX_CHECKPOINTS` samples span the backlog; beyond, the
checkpoints are thinned evenly, so it misses by at most about a fifteenth of the backlog's span. It
is only ever a lower bound (when in doubt, a checkpoint is dropped, never trusted): an alert on it
never fires early. A message that carries the header at the tail gives its exact age instead.

This module holds the decisions (pure functions) and the sampling loop; the Redis layout and its
in-memory twin are in :mod:`ktsync.core.queue_age_store`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ktsync.core.broker import ENQUEUED_AT_HEADER

SAMPLE_INTERVAL = 2.0  # seconds between a worker's samples of its queues (the bound's resolution)
TAIL_SAMPLE = 8  # messages read from the tail of each list (headers, checkpoints near the tail)
MAX_CHECKPOINTS = 16  # per broker list: the key stays small however long the backlog
MAX_SCAN = 50_000  # messages a reader looks through for a checkpoint before it gives up (no bound then)

Source = Literal["enqueued_at", "first_seen"]


@dataclass(frozen=True)
class QueueAge:
    """``exact``: the tail's own ``ktsync_enqueued_at``; otherwise a lower bound ("at least")."""

    seconds: float
    exact: bool

    @property
    def source(self) -> Source:
        return "enqueued_at" if self.exact else "first_seen"


@dataclass(frozen=True)
class Checkpoint:
    step: int  # the priority list it was seen in
    tag: str  # its kombu delivery tag
    seen: float  # the Redis server's time when it was first seen there


@dataclass(frozen=True)
class ListView:
    """One broker list as read: its length, its newest message and its last :data:`TAIL_SAMPLE`."""

    length: int
    head: bytes | None = None
    tail: tuple[bytes, ...] = ()  # oldest last, as LRANGE -n -1 returns them


@dataclass(frozen=True)
class QueueView:
    now: float  # the Redis server's clock
    lists: Mapping[int, ListView]  # by priority step
    checkpoints: tuple[Checkpoint, ...] = ()


class Scan:
    """What a reader's scan of a whole list found (see ``AgeBook.nearest``)."""

    NONE: Literal["none"] = "none"  # no message of the list carries any of the tags
    TOO_DEEP: Literal["too_deep"] = "too_deep"  # not within MAX_SCAN messages of the tail: no verdict


Nearest = str | Literal["none", "too_deep"] | None  # a tag found, a verdict, or None: not scanned


@dataclass(frozen=True)
class Plan:
    """One list's (:func:`plan_list`) or a whole queue's (:func:`combine`) age and checkpoint changes."""

    age: QueueAge | None  # None: nothing known
    remove: frozenset[Checkpoint] = frozenset()
    add: tuple[Checkpoint, ...] = ()
    empty: bool = False  # the list (every list of the queue) is empty: its checkpoints can go

    @property
    def writes(self) -> bool:
        return bool(self.remove or self.add)


class AgeBook(Protocol):
    """Reads broker lists and keeps their checkpoints (Redis, or the in-memory twin)."""

    def view(self, queues: Sequence[str]) -> dict[str, QueueView]: ...

    def nearest(self, queue: str, step: int, tags: Sequence[str]) -> Nearest: ...

    def update(self, plans: Mapping[str, Plan]) -> None:
        """Apply each queue's checkpoint changes (one round trip for them all)."""


def tag_of(raw: bytes) -> str | None:
    """A raw kombu message's delivery tag (kombu sets one on every message it can consume)."""
    try:
        tag = json.loads(raw)["properties"]["delivery_tag"]
    except (ValueError, TypeError, KeyError):
        return None
    return tag if isinstance(tag, str) and tag and '"' not in tag else None


def enqueued_at(raw: bytes) -> float | None:
    try:
        value = json.loads(raw).get("headers", {}).get(ENQUEUED_AT_HEADER)
        stamp = float(value)
    except (ValueError, TypeError, AttributeError):
        return None
    return stamp if math.isfinite(stamp) else None


def oldest_enqueued_at(messages: Iterable[bytes]) -> float | None:
    """The earliest ``ktsync_enqueued_at`` header among raw kombu messages; None when none carries one."""
    times = [t for t in (enqueued_at(raw) for raw in messages) if t is not None]
    return min(times) if times else None


def needs_scan(view: ListView, checkpoints: Sequence[Checkpoint]) -> bool:
    """Whether only a look through the whole list can tell which checkpoint is nearest its tail."""
    if not view.length or not checkpoints or view.length <= len(view.tail):
        return False
    if view.tail and enqueued_at(view.tail[-1]) is not None:
        return False  # the tail's own header is exact: no bound needed
    tags = {c.tag for c in checkpoints}
    return not any(tag_of(raw) in tags for raw in view.tail)


def plan_list(
    view: ListView, checkpoints: Sequence[Checkpoint], nearest: Nearest, *, now: float, step: int,
    local_now: float, recording: bool = True,
) -> Plan:  # fmt: skip
    """One list's age and the checkpoint changes that keep its bound (``now``: Redis time; ``local_now``
    the clock the producers' ``ktsync_enqueued_at`` headers are compared with)."""
    if view.length == 0:
        return Plan(None, frozenset(checkpoints), empty=True)
    by_tag = {c.tag: c for c in checkpoints}
    anchor, verdict = _anchor(view, by_tag, nearest)
    gone = _gone(checkpoints, anchor, verdict)
    bound = None if not recording or verdict == "unknown" else (now - anchor.seen if anchor else 0.0)
    add: list[Checkpoint] = []
    if recording:
        head = tag_of(view.head) if view.head is not None else None
        tail = tag_of(view.tail[-1]) if view.tail else None
        fresh = [head] + ([tail] if verdict == "gone" else [])
        for tag in dict.fromkeys(t for t in fresh if t is not None and t not in by_tag):
            add.append(Checkpoint(step, tag, now))
    kept = [c for c in checkpoints if c not in gone] + add
    thinned = thin(kept, MAX_CHECKPOINTS)
    return Plan(
        _list_age(view, bound, local_now),
        frozenset(gone | {c for c in thinned if c in checkpoints}),
        tuple(c for c in add if c not in thinned),
    )


def _anchor(
    view: ListView, by_tag: Mapping[str, Checkpoint], nearest: Nearest
) -> tuple[Checkpoint | None, Literal["found", "gone", "unknown"]]:
    """The checkpoint nearest the tail still in the list: from the tail sample, else the scan."""
    for raw in reversed(view.tail):
        found = by_tag.get(tag_of(raw) or "")
        if found is not None:
            return found, "found"
    if not by_tag or view.length <= len(view.tail) or nearest == Scan.NONE:
        return None, "gone"
    if nearest is None or nearest == Scan.TOO_DEEP or nearest not in by_tag:
        return None, "unknown"
    return by_tag[nearest], "found"


def _gone(checkpoints: Sequence[Checkpoint], anchor: Checkpoint | None, verdict: str) -> set[Checkpoint]:
    """Checkpoints no longer in the list. Seen before the anchor: consumed (or, after a race between
    samplers, deeper than it; dropping one only ever lowers the bound, never raises it)."""
    if verdict == "unknown":
        return set()
    if anchor is None:
        return set(checkpoints)
    return {c for c in checkpoints if c.seen < anchor.seen}


def _list_age(view: ListView, bound: float | None, local_now: float) -> QueueAge | None:
    tail_stamp = enqueued_at(view.tail[-1]) if view.tail else None
    if tail_stamp is not None:
        return QueueAge(max(0.0, local_now - tail_stamp), exact=True)
    # Newer messages' headers: the tail is at least as old as the oldest of them.
    stamped = oldest_enqueued_at(view.tail)
    bounds = [b for b in (bound, None if stamped is None else local_now - stamped) if b is not None]
    return QueueAge(max(0.0, *bounds), exact=False) if bounds else None


def thin(checkpoints: Sequence[Checkpoint], cap: int) -> set[Checkpoint]:
    """Which checkpoints to drop (per list) to keep ``cap``: always keep the first and the last, drop
    the one whose neighbours are closest in time, so the gaps stay even (the bound's precision)."""
    dropped: set[Checkpoint] = set()
    for step in {c.step for c in checkpoints}:
        kept = sorted((c for c in checkpoints if c.step == step), key=lambda c: (c.seen, c.tag))
        while len(kept) > cap:
            index = min(range(1, len(kept) - 1), key=lambda i: kept[i + 1].seen - kept[i - 1].seen)
            dropped.add(kept.pop(index))
    return dropped


def oldest(ages: Sequence[QueueAge | None]) -> QueueAge | None:
    """The oldest of several waiting lists' (or queues') ages, exact only if every one is (one whose
    age is unknown makes the others' a lower bound); None when none is known."""
    known = [a for a in ages if a is not None]
    if not known:
        return None
    exact = len(known) == len(ages) and all(a.exact for a in known)
    return QueueAge(max(a.seconds for a in known), exact)


def combine(plans: Iterable[Plan]) -> Plan:
    """A queue's plan from its lists': the oldest waiting list's age (:func:`oldest`), every change."""
    waiting = [p for p in plans if not p.empty]
    remove = frozenset(c for p in plans for c in p.remove)
    add = tuple(c for p in waiting for c in p.add)
    if not waiting:
        return Plan(QueueAge(0.0, exact=True), remove, empty=True)
    return Plan(oldest([p.age for p in waiting]), remove, add)


@dataclass(frozen=True)
class Sampled:
    pending: int  # messages waiting, every priority list together
    age: QueueAge | None  # of the oldest; None: unknown


def sample_queues(
    book: AgeBook, queues: Sequence[str], *, local_now: float, scan: bool = True, recording: bool = True
) -> dict[str, Sampled]:
    """Every queue's depth and oldest pending age, recording checkpoints on the way.

    ``scan``: look through a list for its checkpoint when the tail sample has none (readers do;
    workers, sampling often, only keep the checkpoints). ``recording=False``: read-only, headers only.
    """
    sampled: dict[str, Sampled] = {}
    writes: dict[str, Plan] = {}
    for queue, view in book.view(queues).items():
        plans = []
        for step, lst in view.lists.items():
            mine = [c for c in view.checkpoints if c.step == step]
            look = scan and recording and needs_scan(lst, mine)
            found = book.nearest(queue, step, [c.tag for c in mine]) if look else None
            plans.append(plan_list(lst, mine, found, now=view.now, step=step, local_now=local_now,
                                   recording=recording))  # fmt: skip
        plan = combine(plans)
        if recording and plan.writes:
            writes[queue] = plan
        sampled[queue] = Sampled(sum(lst.length for lst in view.lists.values()), plan.age)
    if writes:
        book.update(writes)
    return sampled


def describe_age(seconds: float | None, source: str | None) -> str:
    """``12s``, ``at least 12s, first seen``, or ``unknown``: how ``ktsync status`` shows an age."""
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f}s" if source != "first_seen" else f"at least {seconds:.0f}s, first seen"
