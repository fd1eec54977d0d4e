"""Deletion requests from KlickTipp waiting for a person to decide (the ``review`` policy).

Key layout: ``{p}:review`` hash, request id -> JSON ``{id, email, klicktipp_id, source,
crm_contact_id, occurred_at, received_at}``. ``ktsync review list`` shows it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Protocol, cast

import redis


class ReviewList(Protocol):
    def add(self, request_id: str, item: Mapping[str, Any]) -> None: ...

    def list(self) -> list[dict[str, Any]]:
        """Oldest first."""
        ...

    def remove(self, request_id: str) -> bool: ...

    def remove_many(self, request_ids: Collection[str]) -> int:
        """Remove these requests at once (an erasure purges the person's); how many were there."""
        ...


class RedisReviewList:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._key = f"{prefix}:review"

    def add(self, request_id: str, item: Mapping[str, Any]) -> None:
        self._redis.hset(self._key, request_id, json.dumps({**item, "id": request_id}, sort_keys=True))

    def list(self) -> list[dict[str, Any]]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._key))
        return sorted((json.loads(v) for v in raw.values()), key=lambda i: (i.get("received_at", 0), i["id"]))

    def remove(self, request_id: str) -> bool:
        return bool(self._redis.hdel(self._key, request_id))

    def remove_many(self, request_ids: Collection[str]) -> int:
        return int(self._redis.hdel(self._key, *request_ids)) if request_ids else 0


class MemoryReviewList:
    """In-memory twin of :class:`RedisReviewList`."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}

    def add(self, request_id: str, item: Mapping[str, Any]) -> None:
        self._items[request_id] = {**item, "id": request_id}

    def list(self) -> list[dict[str, Any]]:
        return sorted(self._items.values(), key=lambda i: (i.get("received_at", 0), i["id"]))

    def remove(self, request_id: str) -> bool:
        return self._items.pop(request_id, None) is not None

    def remove_many(self, request_ids: Collection[str]) -> int:
        return sum(self.remove(request_id) for request_id in set(request_ids))
