"""The reclaimer: a live worker gives back what dead workers held, one reclaimer at a time.

Every heartbeat interval, under a leased lock, it reads a view of every session and of kombu's
unacked hash, lets :func:`~ktsync.worker.recovery.decide.plan` decide, and acts: a dead session's locks and
limiter slots are released (compare-and-delete) and its tasks go back to the head of their queue;
orphans (unacked, held by nobody for longer than the heartbeat timeout) go back too. Tasks are put
back by kombu itself (``restore_by_tag``: a WATCH transaction that knows the key prefix and the
priority lists), so a task that was acked meanwhile is left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import redis

from ktsync.worker.locks import RedisLocks
from ktsync.worker.recovery import store
from ktsync.worker.recovery.decide import View, may_judge, plan, restorable, watch_only
from ktsync.worker.recovery.heartbeat import Pulse
from ktsync.worker.recovery.keys import RECLAIM_LOCK, Keys, slot_prefix

log = logging.getLogger(__name__)

Restore = Callable[[Sequence[str]], None]  # put these delivery tags back at the head of their queues


@dataclass(frozen=True)
class Reclaimed:
    """What one pass gave back."""

    tasks: int = 0
    orphans: int = 0
    locks: int = 0
    slots: int = 0
    workers: int = 0

    def __add__(self, other: Reclaimed) -> Reclaimed:
        return Reclaimed(
            *(a + b for a, b in zip(self.counters().values(), other.counters().values(), strict=True))
        )

    def counters(self) -> dict[str, int]:
        """In the names of :data:`~ktsync.worker.recovery.keys.COUNTERS`."""
        return {"reclaimed_tasks": self.tasks, "orphaned_tasks": self.orphans, "released_locks": self.locks,
                "released_slots": self.slots, "dead_workers": self.workers}  # fmt: skip


class Reclaimer:
    """``session``: this worker's (never reclaimed by itself); ``account``: the limiter account of a
    dead session that did not register one; ``queues``: ktsync's queues, the only ones touched."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        session: str,
        account: str,
        queues: Collection[str],
        timeout: float,
        restore: Restore,
        pulse: Pulse,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis, self._keys, self._session, self._account = client, keys, session, account
        self._queues, self._timeout, self._restore = frozenset(queues), timeout, restore
        self._pulse, self._clock = pulse, clock
        # Not registered with the session: a reclaimer that dies mid-pass is covered by the short lease.
        self._lock = RedisLocks(client, keys.prefix)
        self._routes: dict[str, str] = {}  # delivery tag -> routing key (a tag's never changes)

    def run_once(self) -> Reclaimed:
        judging = may_judge(self._pulse.healthy_since, self._clock(), self._timeout)
        token = self._lock.acquire(RECLAIM_LOCK, lease=self._timeout)
        if token is None:  # another worker's reclaimer is at it
            return Reclaimed()
        try:
            reclaimed = self._pass(act=judging)
        finally:
            self._lock.release(RECLAIM_LOCK, token)
        store.count(self._redis, self._keys, reclaimed.counters())
        return reclaimed

    def _pass(self, *, act: bool) -> Reclaimed:
        """``act``: reclaim and restore; otherwise only keep the orphan records (see ``may_judge``)."""
        view = store.read_view(self._redis, self._keys)
        decided = plan(
            view, self._routes_of(view), own=self._session, queues=self._queues, timeout=self._timeout
        )
        if not act:
            decided = watch_only(decided)
        store.update_orphans(self._redis, self._keys, decided)
        reclaimed = Reclaimed()
        for session in decided.dead:
            reclaimed += self._reclaim(session, view)
        if decided.restore:
            self._restore(decided.restore)
            log.warning("recovery: %d task(s) held by no live worker for over %gs (a lost ack or an "
                        "unregistered worker) back at the head of their queue", len(decided.restore), self._timeout)  # fmt: skip
            reclaimed += Reclaimed(tasks=len(decided.restore), orphans=len(decided.restore))
        return reclaimed

    def _routes_of(self, view: View) -> Mapping[str, str]:
        """Routing keys of the unheld tags, read once per tag."""
        unheld = view.unheld()
        self._routes = {tag: route for tag, route in self._routes.items() if tag in view.unacked}
        self._routes.update(store.read_routes(self._redis, self._keys, unheld.difference(self._routes)))
        return {tag: self._routes[tag] for tag in unheld if tag in self._routes}

    def _reclaim(self, session: str, view: View) -> Reclaimed:
        taken = store.claim_session(self._redis, self._keys, session)
        if taken is None:  # it beat again, or another reclaimer took it
            return Reclaimed()
        account = str(taken.entry.get("account") or self._account)
        # Locks first: the tasks put back are taken at once, and must find their contacts free.
        locks, slots = store.release_held(
            self._redis, self._keys, session, taken.locks, account=account, slots=slot_prefix(session)
        )
        tags = restorable(taken.held, view)
        if tags:
            self._restore(tags)
        log.warning("recovery: worker %s (host %s, pid %s) stopped heartbeating: %d task(s) back at the "
                    "head of their queue, %d lock(s) and %d limiter slot(s) released",
                    taken.entry.get("nodename", session), taken.entry.get("host", "?"),
                    taken.entry.get("pid", "?"), len(tags), locks, slots)  # fmt: skip
        return Reclaimed(tasks=len(tags), locks=locks, slots=slots, workers=1)
