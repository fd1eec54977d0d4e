"""Every Redis-backed part and its in-memory twin pass the same test bodies."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from ktsync.worker.locks import LockBusy, Locks, MemoryLocks, RedisLocks, held
from ktsync.worker.outbound import MemoryOutbound, Outbound, RedisOutbound
from ktsync.worker.refcache import MemoryReferenceCache, RedisReferenceCache, ReferenceCache
from ktsync.worker.review import MemoryReviewList, RedisReviewList, ReviewList
from ktsync.worker.state import ContactState, MemoryStateStore, RedisStateStore, StateStore
from tests.unit.twins import twin

state_store = twin(MemoryStateStore, RedisStateStore)
locks = twin(MemoryLocks, RedisLocks)
ref_cache = twin(MemoryReferenceCache, RedisReferenceCache)
outbound = twin(MemoryOutbound, RedisOutbound)
review_list = twin(MemoryReviewList, RedisReviewList)

ALEX = ContactState(
    source="hubspot",
    crm_contact_id="501",
    klicktipp_id="9",
    email="alex@shop.example",
    tags=frozenset({"[CRM] A"}),
    occurred_at=100.0,
    subscription="subscribed",
)


def test_state_round_trips_and_is_found_by_klicktipp_id_and_email(state_store: StateStore) -> None:
    state_store.put(ALEX)
    assert state_store.get("hubspot", "501") == ALEX
    assert state_store.get("hubspot", "502") is None
    assert state_store.find(klicktipp_id="9") == ALEX
    assert state_store.find(email="alex@shop.example") == ALEX
    assert state_store.find(email="nobody@shop.example") is None


def test_an_email_change_moves_the_email_index(state_store: StateStore) -> None:
    state_store.put(ALEX)
    state_store.put(replace(ALEX, email="new@shop.example"))
    assert state_store.find(email="alex@shop.example") is None
    assert state_store.find(email="new@shop.example") is not None


def test_a_tombstone_keeps_ids_and_times_only(state_store: StateStore) -> None:
    state_store.put(ALEX)
    state_store.put(ALEX.tombstone(occurred_at=150.0, now=160.0))
    record = state_store.get("hubspot", "501")
    assert record is not None
    assert (record.klicktipp_id, record.email, record.tags, record.occurred_at) == (
        "9",
        None,
        frozenset(),
        150.0,
    )
    assert record.is_tombstone
    assert state_store.find(email="alex@shop.example") is None


def test_events_are_remembered(state_store: StateStore) -> None:
    assert not state_store.seen_event("hubspot", "evt-1")
    state_store.mark_event("hubspot", "evt-1", ttl=60)
    assert state_store.seen_event("hubspot", "evt-1")
    assert not state_store.seen_event("close", "evt-1")


def test_a_lock_has_one_holder_until_released(locks: Locks) -> None:
    token = locks.acquire("contact:x", lease=10)
    assert token is not None
    assert locks.acquire("contact:x", lease=10) is None
    assert locks.release("contact:x", "not-the-owner") is False
    assert locks.release("contact:x", token) is True
    assert locks.acquire("contact:x", lease=10) is not None


def test_a_lease_expires_so_a_crashed_holder_cannot_block_forever(locks: Locks) -> None:
    if isinstance(locks, MemoryLocks):
        now = [0.0]
        locks = MemoryLocks(clock=lambda: now[0])
        assert locks.acquire("c", lease=0.05) is not None
        now[0] = 1.0
    else:
        assert locks.acquire("c", lease=0.05) is not None
        time.sleep(0.1)
    assert locks.acquire("c", lease=10) is not None


def test_held_raises_lock_busy_after_waiting(locks: Locks) -> None:
    assert locks.acquire("busy", lease=10) is not None
    with pytest.raises(LockBusy), held(locks, "busy", lease=1, wait=0.05):
        pass


def test_the_reference_cache_stores_adds_and_drops(ref_cache: ReferenceCache) -> None:
    assert ref_cache.load("tags") is None
    ref_cache.add("tags", "[CRM] A", "11")  # not loaded yet: must not pass for a complete mapping
    assert ref_cache.load("tags") is None
    ref_cache.store("tags", {}, ttl=60)
    assert ref_cache.load("tags") == {}  # loaded and empty is not the same as absent
    ref_cache.add("tags", "[CRM] A", "11")
    assert ref_cache.load("tags") == {"[CRM] A": "11"}
    ref_cache.drop("tags")
    assert ref_cache.load("tags") is None


def test_the_outbound_stream_keeps_order_type_and_payload(outbound: Outbound) -> None:
    outbound.publish("contact.synced", {"crm_contact_id": "501", "klicktipp_id": "9"})
    outbound.publish("crm.delete_contact", {"email": "a@shop.example"})
    entries = outbound.read()
    assert [(kind, payload) for _, kind, payload in entries] == [
        ("contact.synced", {"crm_contact_id": "501", "klicktipp_id": "9"}),
        ("crm.delete_contact", {"email": "a@shop.example"}),
    ]


def test_the_review_list_lists_oldest_first_and_forgets_handled_requests(review_list: ReviewList) -> None:
    review_list.add("r2", {"email": "b@shop.example", "received_at": 2.0})
    review_list.add("r1", {"email": "a@shop.example", "received_at": 1.0})
    assert [i["id"] for i in review_list.list()] == ["r1", "r2"]
    assert review_list.remove("r1") is True
    assert review_list.remove("r1") is False
    assert [i["id"] for i in review_list.list()] == ["r2"]
