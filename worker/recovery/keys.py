"""Where crash recovery keeps its state in Redis: one place for the key names every part uses.

Key layout (``{p}`` the key prefix, ``{sid}`` a worker session id, ``{a}`` the limiter account):

* ``{p}:sessions``               hash: session id -> JSON ``host``, ``pid``, ``nodename``, ``account``,
  ``started`` and ``beat`` (Unix seconds, the worker's clock: for display only); a registered
  session whose alive key is gone is dead
* ``{p}:session:{sid}:alive``    string ``1`` with a PX expiry of ``worker.heartbeat_timeout``, renewed
  every ``worker.heartbeat_interval`` (Redis's clock decides when a worker is dead)
* ``{p}:session:{sid}:held``     set: kombu delivery tags the worker holds (delivered, not acked),
  replaced at every beat
* ``{p}:session:{sid}:locks``    hash: lock key -> token (see :mod:`ktsync.worker.locks`)
* ``{p}:recovery:orphans``       sorted set: delivery tag -> when it was first seen in kombu's unacked
  hash held by no session (Redis's clock, seconds)
* ``{p}:metrics:recovery``       hash: counters, see :data:`COUNTERS`
* ``{p}:lock:recovery``          the reclaimer's lock: one reclaimer at a time across workers
* ``{p}:rl:{a}:inflight``        the limiter's in-flight slots (see :mod:`ktsync.worker.ratelimit.redis`); a
  session's slot tokens start with ``{sid}:``
* ``{broker_prefix}unacked``     kombu's hash of delivered, unacknowledged messages: delivery tag ->
  JSON ``[message, exchange, routing_key]`` (read here, changed only through kombu)
"""

from __future__ import annotations

from dataclasses import dataclass

from ktsync.config.settings import Settings
from ktsync.core.broker import UNACKED_KEY
from ktsync.worker.locks import session_locks_key
from ktsync.worker.ratelimit.redis import inflight_key

RECLAIM_LOCK = "recovery"  # a lock name, under {p}:lock:
SESSION_TTL = 24 * 3600  # seconds a session's held set and lock registry outlive its last beat
# reclaimed_tasks: tasks put back on their queue (orphaned_tasks of them found held by nobody);
# released_locks / released_slots: locks and limiter slots given back for dead holders;
# dead_workers: sessions found dead and reclaimed.
COUNTERS = ("reclaimed_tasks", "orphaned_tasks", "released_locks", "released_slots", "dead_workers")


@dataclass(frozen=True)
class Keys:
    """Key names for one installation (``prefix`` = ``redis.key_prefix``) and its broker."""

    prefix: str
    broker_prefix: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        return cls(settings.key_prefix, settings.broker_prefix)

    @property
    def sessions(self) -> str:
        return f"{self.prefix}:sessions"

    def alive(self, session: str) -> str:
        return f"{self.prefix}:session:{session}:alive"

    def held(self, session: str) -> str:
        return f"{self.prefix}:session:{session}:held"

    def locks(self, session: str) -> str:
        return session_locks_key(self.prefix, session)

    @property
    def orphans(self) -> str:
        return f"{self.prefix}:recovery:orphans"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}:metrics:recovery"

    def inflight(self, account: str) -> str:
        return inflight_key(self.prefix, account)

    @property
    def unacked(self) -> str:
        return f"{self.broker_prefix}{UNACKED_KEY}"


def slot_prefix(session: str, pid: int | None = None) -> str:
    """How the limiter slot tokens of a session (or of one of its processes) begin."""
    return f"{session}:" if pid is None else f"{session}:{pid}:"
