"""KlickTipp reference data (data fields, tags, opt-in processes), cached and refreshed on demand.

Every task needs tag IDs and field keys; reading them per task would double the API calls, so they
are cached for ``ttl`` seconds and refreshed early when KlickTipp says something is missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from worker.klicktipp.client import KlickTippClient
from worker.klicktipp.errors import Rejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Cached:
    value: Mapping[str, str]
    loaded_at: float


class ReferenceData:
    """Thread-safe TTL cache of ``GET /field``, ``GET /tag`` and ``GET /list``."""

    def __init__(
        self, client: KlickTippClient, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._loaders: dict[str, Callable[[], Mapping[str, str]]] = {
            "fields": client.field_index,
            "lists": client.list_index,
            "tags": lambda: {name: tag_id for tag_id, name in client.tag_index().items()},
        }

    def fields(self) -> Mapping[str, str]:
        """Field key -> label."""
        return self._get("fields")

    def lists(self) -> Mapping[str, str]:
        """Opt-in process id -> name (the unnamed one is the account's default double opt-in)."""
        return self._get("lists")

    def tags(self) -> Mapping[str, str]:
        """Manual tag name -> id."""
        return self._get("tags")

    def invalidate(self, *names: str) -> None:
        with self._lock:
            for name in names or tuple(self._cache):
                self._cache.pop(name, None)

    def ensure_tags(self, names: Iterable[str]) -> dict[str, str]:
        """Tag name -> id for every name, creating the missing tags (each exactly once)."""
        wanted = sorted(set(names))
        known = self.tags()
        if all(name in known for name in wanted):
            return {name: known[name] for name in wanted}
        with self._lock:
            known = dict(self.tags())  # another thread may have created some meanwhile
            for name in wanted:
                if name not in known:
                    known[name] = self._create_tag(name)
            self._cache["tags"] = _Cached(known, self._clock())
        return {name: known[name] for name in wanted}

    def _create_tag(self, name: str) -> str:
        try:
            tag_id = self._client.tag_create(name)
        except Rejected:
            # Someone else created it in between (names are unique): read it back.
            self.invalidate("tags")
            existing = self.tags().get(name)
            if existing is None:
                raise
            return existing
        log.info("created tag %r (id %s)", name, tag_id)
        return tag_id

    def _get(self, name: str) -> Mapping[str, str]:
        cached = self._cache.get(name)
        now = self._clock()
        if cached is not None and now - cached.loaded_at < self._ttl:
            return cached.value
        with self._lock:
            cached = self._cache.get(name)
            if cached is None or now - cached.loaded_at >= self._ttl:
                cached = _Cached(dict(self._loaders[name]()), self._clock())
                self._cache[name] = cached
            return cached.value
