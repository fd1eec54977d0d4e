"""The outbound stream: what ktsync tells the CRM side (KlickTipp IDs, subscription status, deletions).

Redis stream ``{p}:outbound`` (capped near ``maxlen``); every entry has a ``type`` and a ``payload``
(JSON). Types: ``contact.synced``, ``crm.delete_contact``, ``crm.anonymize_contact``, ``contact.erased``
(a privacy deletion was carried out: ids and times only). Read it with ``XREAD``/``XREADGROUP`` from
any language; see the README. An erasure deletes (``XDEL``) the entries about the person that the
stream still holds.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis

from ktsync.worker.state.held import Held

SCAN_PAGE = 1000  # entries per XRANGE when reading the whole stream


class Outbound(Protocol):
    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Append one entry; return its stream id."""
        ...

    def hold(self, kind: str, payload: Mapping[str, Any]) -> Held:
        """``publish``, held back for the task's closing round trip (see :mod:`ktsync.worker.state.held`)."""
        ...

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        """The oldest ``count`` entries as (id, type, payload)."""
        ...

    def entries(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every entry still held, oldest first, as (id, type, payload)."""
        ...

    def delete(self, entry_ids: Collection[str]) -> int:
        """Delete these entries (an erasure); how many were there."""
        ...


class RedisOutbound:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync", maxlen: int = 100_000) -> None:
        self._redis = client
        self._key = f"{prefix}:outbound"
        self._maxlen = maxlen

    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        entry_id = self.stage(self._redis, kind, payload)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def hold(self, kind: str, payload: Mapping[str, Any]) -> Held:
        return _HeldEntry(self, kind, dict(payload))

    def stage(self, client: Any, kind: str, payload: Mapping[str, Any]) -> Any:
        """XADD the entry on ``client`` (a Redis client, or a pipeline the caller executes)."""
        fields = {"type": kind, "payload": json.dumps(payload, sort_keys=True)}
        return client.xadd(self._key, fields, maxlen=self._maxlen, approximate=True)

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        return self._range("-", count)

    def _range(self, start: str, count: int) -> list[tuple[str, str, dict[str, Any]]]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self._redis.xrange(self._key, min=start, count=count)
        )
        return [(i.decode(), f[b"type"].decode(), json.loads(f[b"payload"])) for i, f in entries]

    def entries(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        start = "-"
        while page := self._range(start, SCAN_PAGE):
            yield from page
            start = f"({page[-1][0]}"  # exclusive: after the last one read

    def delete(self, entry_ids: Collection[str]) -> int:
        return int(self._redis.xdel(self._key, *entry_ids)) if entry_ids else 0


@dataclass(frozen=True)
class _HeldEntry:
    """An entry held for the task's closing round trip."""

    outbound: RedisOutbound
    kind: str
    payload: Mapping[str, Any]

    def stage(self, pipe: Any) -> None:
        self.outbound.stage(pipe, self.kind, self.payload)

    def lost(self) -> None:
        """Nothing is owed: the task is retried, and publishes again."""


class MemoryOutbound:
    """In-memory twin of :class:`RedisOutbound`."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        entry_id = f"{len(self._entries) + 1}-0"
        self._entries.append((entry_id, kind, json.loads(json.dumps(payload))))
        return entry_id

    def hold(self, kind: str, payload: Mapping[str, Any]) -> Held:
        return _HeldMemoryEntry(self, kind, dict(payload))

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        return self._entries[:count]

    def entries(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        yield from list(self._entries)

    def delete(self, entry_ids: Collection[str]) -> int:
        doomed = set(entry_ids)
        kept = [entry for entry in self._entries if entry[0] not in doomed]
        removed, self._entries = len(self._entries) - len(kept), kept
        return removed


@dataclass(frozen=True)
class _HeldMemoryEntry:
    """An entry held for the closing round trip: published when it is staged (there is no pipeline)."""

    outbound: MemoryOutbound
    kind: str
    payload: Mapping[str, Any]

    def stage(self, pipe: Any) -> None:
        self.outbound.publish(self.kind, self.payload)

    def lost(self) -> None:
        """Nothing is owed."""
