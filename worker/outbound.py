"""The outbound stream: what ktsync tells the CRM side (KlickTipp IDs, subscription status, deletions).

Redis stream ``{p}:outbound`` (capped near ``maxlen``); every entry has a ``type`` and a ``payload``
(JSON). Types: ``contact.synced``, ``crm.delete_contact``, ``crm.anonymize_contact``. Read it with
``XREAD``/``XREADGROUP`` from any language; see the README.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, cast

import redis


class Outbound(Protocol):
    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Append one entry; return its stream id."""
        ...

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        """The oldest ``count`` entries as (id, type, payload)."""
        ...


class RedisOutbound:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync", maxlen: int = 100_000) -> None:
        self._redis = client
        self._key = f"{prefix}:outbound"
        self._maxlen = maxlen

    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        fields = {"type": kind, "payload": json.dumps(payload, sort_keys=True)}
        entry_id = self._redis.xadd(self._key, fields, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], self._redis.xrange(self._key, count=count))
        return [(i.decode(), f[b"type"].decode(), json.loads(f[b"payload"])) for i, f in entries]


class MemoryOutbound:
    """In-memory twin of :class:`RedisOutbound`."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, kind: str, payload: Mapping[str, Any]) -> str:
        entry_id = f"{len(self._entries) + 1}-0"
        self._entries.append((entry_id, kind, json.loads(json.dumps(payload))))
        return entry_id

    def read(self, count: int = 100) -> list[tuple[str, str, dict[str, Any]]]:
        return self._entries[:count]
