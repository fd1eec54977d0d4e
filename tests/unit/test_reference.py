"""Reference data: cached and shared, and every missing tag created exactly once across workers."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import redis

from ktsync.worker.klicktipp.errors import Rejected
from ktsync.worker.locks import MemoryLocks, RedisLocks
from ktsync.worker.refcache import MemoryReferenceCache, RedisReferenceCache
from ktsync.worker.reference import ReferenceData


class AccountStub:
    """A stand-in KlickTipp account for the reference layer: counts reads and tag creations."""

    def __init__(self) -> None:
        self.tags = {"10": "Webinar 2026"}
        self.calls: Counter[str] = Counter()
        self._mutex = threading.Lock()

    def tag_index(self) -> dict[str, str]:
        self.calls["tag_index"] += 1
        return dict(self.tags)

    def tag_create(self, name: str, *, text: str | None = None) -> str:
        with self._mutex:
            self.calls[f"create {name}"] += 1
            if name in self.tags.values():
                raise Rejected("duplicate", operation="api.tag.create", status=406)
            tag_id = str(100 + len(self.tags))
            self.tags[tag_id] = name
            return tag_id

    def field_index(self) -> dict[str, str]:
        self.calls["field_index"] += 1
        return {"fieldFirstName": "First Name"}

    def list_index(self) -> dict[str, str]:
        self.calls["list_index"] += 1
        return {"23": "CRM"}


def make(account: AccountStub, backend: str, client: redis.Redis | None, namespace: str) -> ReferenceData:
    if backend == "memory":
        return ReferenceData(account, MemoryReferenceCache(), MemoryLocks(), ttl=60)  # type: ignore[arg-type]
    assert client is not None
    cache, locks = RedisReferenceCache(client, namespace), RedisLocks(client, namespace)
    return ReferenceData(account, cache, locks, ttl=60)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def redis_or_none(request: pytest.FixtureRequest, backend: str) -> Any:
    return request.getfixturevalue("redis_client") if backend == "redis" else None


def test_reads_are_cached(backend: str, request: pytest.FixtureRequest, namespace: str) -> None:
    account = AccountStub()
    reference = make(account, backend, redis_or_none(request, backend), namespace)
    for _ in range(5):
        assert reference.tags() == {"Webinar 2026": "10"}
        assert reference.fields() == {"fieldFirstName": "First Name"}
    assert account.calls == Counter({"tag_index": 1, "field_index": 1})


def test_concurrent_workers_create_each_new_tag_exactly_once(
    backend: str, request: pytest.FixtureRequest, namespace: str
) -> None:
    # Given several workers (with Redis: separate ReferenceData objects, as separate processes have)
    account = AccountStub()
    client = redis_or_none(request, backend)
    shared = make(account, backend, client, namespace)
    workers = [make(account, backend, client, namespace) if backend == "redis" else shared for _ in range(8)]
    names = ["[CRM] [List] New A", "[CRM] [List] New B", "Webinar 2026"]
    results: list[dict[str, str]] = []

    # When all of them need the same new tags at the same moment
    barrier = threading.Barrier(len(workers))

    def need_tags(reference: ReferenceData) -> None:
        barrier.wait()
        results.append(reference.ensure_tags(names))

    threads = [threading.Thread(target=need_tags, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each new tag was created once, and every worker got the same ids
    assert account.calls["create [CRM] [List] New A"] == 1
    assert account.calls["create [CRM] [List] New B"] == 1
    assert account.calls["create Webinar 2026"] == 0
    assert len({tuple(sorted(r.items())) for r in results}) == 1
    assert results[0]["Webinar 2026"] == "10"


def test_a_tag_created_outside_ktsync_meanwhile_is_adopted_not_duplicated(
    backend: str, request: pytest.FixtureRequest, namespace: str
) -> None:
    account = AccountStub()
    reference = make(account, backend, redis_or_none(request, backend), namespace)
    reference.tags()  # cached without the tag
    account.tags["55"] = "[CRM] Made by hand"
    reference.invalidate("tags")
    assert reference.ensure_tags(["[CRM] Made by hand"]) == {"[CRM] Made by hand": "55"}
    assert account.calls["create [CRM] Made by hand"] == 0


def test_a_stale_list_stored_over_a_fresh_one_never_leads_to_a_second_create(namespace: str) -> None:
    # Given worker A created a tag, and worker C then stored an older tag list over the shared cache
    account = AccountStub()
    cache, locks = MemoryReferenceCache(), MemoryLocks()
    worker_a = ReferenceData(account, cache, locks, ttl=60)  # type: ignore[arg-type]
    worker_a.ensure_tags(["[CRM] Fresh"])
    cache.store("tags", {"Webinar 2026": "10"}, ttl=60)  # C's refresh, read before A's create

    # When worker B needs the same tag
    worker_b = ReferenceData(account, cache, locks, ttl=60)  # type: ignore[arg-type]
    ids = worker_b.ensure_tags(["[CRM] Fresh"])

    # Then B finds it in KlickTipp's own list instead of creating it again
    assert account.calls["create [CRM] Fresh"] == 1
    assert ids == worker_a.ensure_tags(["[CRM] Fresh"])


def test_a_shared_read_that_raced_an_invalidation_is_not_kept(namespace: str) -> None:
    # Given a worker thread reading the shared cache (stale: a tag since deleted in KlickTipp) while
    # another thread invalidates the tags after KlickTipp refused that tag
    account = AccountStub()
    stale = {"Webinar 2026": "10", "[CRM] vip": "77"}

    class RacingCache(MemoryReferenceCache):
        raced = False

        def load(self, kind: str) -> dict[str, str] | None:
            if self.raced:
                return super().load(kind)
            self.raced = True
            reference.invalidate(kind)  # the other thread, between this read and its memo
            return dict(stale)

    reference = ReferenceData(account, RacingCache(), MemoryLocks(), ttl=60)  # type: ignore[arg-type]
    assert reference.tags() == stale  # the racing read itself answers what it read

    # Then the stale answer was not memoized: the next read goes to KlickTipp's own list
    assert reference.tags() == {"Webinar 2026": "10"}
    assert account.calls["tag_index"] == 1


def test_refresh_reads_klicktipp_even_when_the_cache_is_warm(namespace: str) -> None:
    account = AccountStub()
    reference = ReferenceData(account, MemoryReferenceCache(), MemoryLocks(), ttl=60)  # type: ignore[arg-type]
    reference.tags()
    account.tags["12"] = "[CRM] new"
    assert reference.refresh("tags") == {"Webinar 2026": "10", "[CRM] new": "12"}
    assert reference.tags() == {"Webinar 2026": "10", "[CRM] new": "12"}
    assert account.calls["tag_index"] == 2
