"""KlickTipp reference data (data fields, opt-in processes, tags): cached, shared, refreshed on demand.

Every task needs tag IDs and field keys; reading them per task would double the API calls. They are
cached in Redis for ``ttl`` seconds (shared by all workers) and memoized in-process for a few
seconds on top, and refreshed early when KlickTipp says something is missing. A missing tag is
created exactly once across all workers: creators serialize on a per-name lock and re-read the
shared cache, and on a miss KlickTipp's tag list, before calling ``POST /tag``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.errors import Rejected
from ktsync.worker.locks import Locks, held
from ktsync.worker.refcache import ReferenceCache

log = logging.getLogger(__name__)

LOCAL_TTL = 5.0  # seconds an in-process copy is trusted before the shared cache is read again
TAG_LOCK_LEASE = 30.0
TAG_LOCK_WAIT = 15.0


class ReferenceData:
    """Fields (key -> label), opt-in processes (id -> name) and manual tags (name -> id)."""

    def __init__(
        self,
        client: KlickTippClient,
        cache: ReferenceCache,
        locks: Locks,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cache = cache
        self._locks = locks
        self._ttl = ttl
        self._local_ttl = min(LOCAL_TTL, ttl)
        self._clock = clock
        self._mutex = threading.Lock()
        self._local: dict[str, tuple[dict[str, str], float]] = {}
        # Bumped by every invalidation: a read of the shared cache that raced one is not memoized.
        self._generation = 0
        self._loaders: dict[str, Callable[[], Mapping[str, str]]] = {
            "fields": client.field_index,
            "lists": client.list_index,
            "tags": lambda: {name: tag_id for tag_id, name in client.tag_index().items()},
        }

    def fields(self) -> Mapping[str, str]:
        return self._get("fields")

    def lists(self) -> Mapping[str, str]:
        return self._get("lists")

    def tags(self) -> Mapping[str, str]:
        return self._get("tags")

    def tag_names(self) -> dict[str, str]:
        """Manual tag id -> name."""
        return {tag_id: name for name, tag_id in self.tags().items()}

    def invalidate(self, *kinds: str) -> None:
        """Forget ``kinds`` (all when none given) here and in the shared cache."""
        for kind in kinds or tuple(self._loaders):
            with self._mutex:
                self._local.pop(kind, None)
                self._generation += 1
            self._cache.drop(kind)

    def refresh(self, kind: str) -> dict[str, str]:
        """Read ``kind`` from KlickTipp now (never from a cache) and share it with every worker."""
        return self._refresh(kind)

    def ensure_tags(self, names: Iterable[str]) -> dict[str, str]:
        """Tag name -> id for every name, creating each missing tag exactly once across all workers."""
        wanted = set(names)
        known = dict(self.tags())
        for name in sorted(wanted - set(known)):
            known[name] = self._create_once(name)
        return {name: known[name] for name in wanted}

    def _create_once(self, name: str) -> str:
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()
        with held(self._locks, f"tag:{digest}", lease=TAG_LOCK_LEASE, wait=TAG_LOCK_WAIT):
            # A miss in the shared cache is not proof: a concurrent refresh may have stored an older
            # list over a tag another worker just created. Only KlickTipp's own list decides.
            tag_id = (self._cache.load("tags") or {}).get(name) or self._refresh("tags").get(name)
            if tag_id is None:
                tag_id = self._create(name)
                self._cache.add("tags", name, tag_id)
        with self._mutex:
            if "tags" in self._local:
                self._local["tags"][0][name] = tag_id
        return tag_id

    def _create(self, name: str) -> str:
        try:
            tag_id = self._client.tag_create(name)
        except Rejected:
            # The name exists after all (created outside ktsync since the last read): use that tag.
            existing = self._refresh("tags").get(name)
            if existing is None:
                raise
            return existing
        log.info("created tag %r (id %s)", name, tag_id)
        return tag_id

    def _get(self, kind: str) -> Mapping[str, str]:
        now = self._clock()
        with self._mutex:
            local = self._local.get(kind)
            generation = self._generation
        if local is not None and now - local[1] < self._local_ttl:
            return local[0]
        shared = self._cache.load(kind)
        if shared is None:
            return self._refresh(kind)
        with self._mutex:
            if generation == self._generation:  # no invalidation since the read
                self._local[kind] = (shared, now)
        return shared

    def _refresh(self, kind: str) -> dict[str, str]:
        fresh = dict(self._loaders[kind]())
        self._cache.store(kind, fresh, self._ttl)
        with self._mutex:
            self._local[kind] = (fresh, self._clock())
        return fresh
