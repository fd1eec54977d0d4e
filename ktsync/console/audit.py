"""Who did what in the console: replays, purges, erasures, review decisions. Kept in Redis, bounded.

Key layout: ``{p}:console:audit`` list, newest first, at most :data:`AUDIT_CAP` JSON entries
``{"at", "user", "action", "tenant", "count", "detail"}`` (``p`` the deployment's key prefix: one log for
every tenant). Every entry is logged too (logger ``ktsync.console.audit``). No entry holds personal
data: selections are described by reason, code, source and counts; contacts by their CRM ids.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol, cast

import redis

AUDIT_CAP = 10_000
log = logging.getLogger("ktsync.console.audit")


@dataclass(frozen=True)
class AuditEntry:
    at: float
    user: str
    action: str  # replay, refetch, purge, forget, review_done
    tenant: str
    count: int
    detail: str = ""

    def line(self) -> str:
        return f"{self.user} {self.action} tenant={self.tenant} count={self.count} {self.detail}".rstrip()


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...

    def recent(self, limit: int = 200) -> list[AuditEntry]: ...


class RedisAuditLog:
    def __init__(self, client: redis.Redis, prefix: str, *, cap: int = AUDIT_CAP) -> None:
        self._redis = client
        self._key = f"{prefix}:console:audit"
        self._cap = cap

    def record(self, entry: AuditEntry) -> None:
        log.info("console: %s", entry.line())
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(self._key, json.dumps(asdict(entry), sort_keys=True))
        pipe.ltrim(self._key, 0, self._cap - 1)
        pipe.execute()

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        raw = cast(list[bytes], self._redis.lrange(self._key, 0, limit - 1))
        return [AuditEntry(**json.loads(item)) for item in raw]


class MemoryAuditLog:
    """In-memory twin of :class:`RedisAuditLog`."""

    def __init__(self, *, cap: int = AUDIT_CAP) -> None:
        self._entries: list[AuditEntry] = []
        self._cap = cap

    def record(self, entry: AuditEntry) -> None:
        log.info("console: %s", entry.line())
        self._entries.insert(0, entry)
        del self._entries[self._cap :]

    def recent(self, limit: int = 200) -> list[AuditEntry]:
        return self._entries[:limit]


def entry(
    user: str, action: str, tenant: str, count: int, detail: str = "", clock: Callable[[], float] = time.time
) -> AuditEntry:
    return AuditEntry(clock(), user, action, tenant, count, detail)
