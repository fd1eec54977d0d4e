"""Crash recovery's decisions as pure functions of plain data: who is dead, which tasks go back.

A pass of the reclaimer reads a :class:`View` (sessions, kombu's unacked tags, orphan records, the
Redis clock), and :func:`plan` says what to do: reclaim the dead sessions (their held tags go back to
their queue at once, their locks and limiter slots are released), and put back the orphans — unacked
tags of ktsync's queues that no registered session holds — once they were seen unheld for longer than
the heartbeat timeout (a lost ack after a Redis restart, a worker that never registered).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SessionView:
    id: str
    alive: bool
    held: frozenset[str] = frozenset()


@dataclass(frozen=True)
class View:
    """What one pass read from Redis."""

    now: float  # Redis's clock, seconds
    sessions: tuple[SessionView, ...]
    unacked: frozenset[str]  # delivery tags in kombu's unacked hash
    first_seen: Mapping[str, float] = field(default_factory=dict)  # orphan tag -> first seen unheld

    @property
    def live_held(self) -> frozenset[str]:
        return frozenset().union(*(s.held for s in self.sessions if s.alive))

    def unheld(self) -> frozenset[str]:
        """Unacked tags no registered session holds (a dead one's are reclaimed with the session)."""
        return self.unacked - frozenset().union(*(s.held for s in self.sessions))


@dataclass(frozen=True)
class Plan:
    dead: tuple[str, ...] = ()  # sessions to reclaim
    restore: tuple[str, ...] = ()  # orphan tags to put back on their queue now
    remember: Mapping[str, float] = field(default_factory=dict)  # new orphan records: tag -> now
    forget: tuple[str, ...] = ()  # orphan records to drop (held again, acked, foreign, or restored)


def plan(view: View, routes: Mapping[str, str], *, own: str, queues: Collection[str], timeout: float) -> Plan:
    """``routes``: the routing key (queue) of each unheld tag; ``own``: this worker's session, never
    judged dead by itself; ``queues``: ktsync's queues (other apps' messages are never touched)."""
    dead = tuple(sorted(s.id for s in view.sessions if not s.alive and s.id != own))
    orphans = {tag for tag in view.unheld() if routes.get(tag) in queues}
    due = tuple(sorted(t for t in orphans if view.now - view.first_seen.get(t, view.now) > timeout))
    remember = {tag: view.now for tag in sorted(orphans) if tag not in view.first_seen}
    forget = tuple(sorted((set(view.first_seen) - orphans) | set(due)))
    return Plan(dead, due, remember, forget)


def watch_only(decided: Plan) -> Plan:
    """The part of a plan a worker not yet allowed to judge (see :func:`may_judge`) carries out: it
    keeps the orphan records current, so that orphans go back as soon as it may act."""
    restoring = set(decided.restore)
    return Plan(remember=decided.remember, forget=tuple(t for t in decided.forget if t not in restoring))


def restorable(held: Collection[str], view: View) -> tuple[str, ...]:
    """Of a dead session's held tags, those still unacked and not taken up by a live session since
    (a tag is kept across redeliveries: the same message may already run elsewhere)."""
    return tuple(sorted(set(held) & view.unacked - view.live_held))


def may_judge(healthy_since: float | None, now: float, timeout: float) -> bool:
    """Whether this worker may call others dead: only after its own heartbeat went through for a
    whole timeout. After a Redis outage every alive key may have expired; the others get that long
    to beat again before anyone is reclaimed."""
    return healthy_since is not None and now - healthy_since >= timeout


def dead_holders(
    locks: Mapping[str, str],
    *,
    own_pid: int,
    pid_of: Callable[[str], int | None],
    alive: Callable[[int], bool],
) -> dict[str, str]:
    """The locks (key -> token) of a live session held by one of its pool processes that died."""
    found = {}
    for key, token in locks.items():
        pid = pid_of(token)
        if pid is not None and pid != own_pid and not alive(pid):
            found[key] = token
    return found
