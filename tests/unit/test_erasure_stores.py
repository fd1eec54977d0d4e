"""Each store's purge operation for privacy deletions: one test body for the Redis store and its twin."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from ktsync.core.dedupe import Deduper, MemoryDeduper, RedisDeduper
from ktsync.worker import outbound as outbound_module
from ktsync.worker.deadletter import DeadLetter, DeadLetterStore, MemoryDeadLetterStore, RedisDeadLetterStore
from ktsync.worker.erasure import MemoryTimelines, RedisTimelines, Timelines
from ktsync.worker.outbound import MemoryOutbound, Outbound, RedisOutbound
from ktsync.worker.review import MemoryReviewList, RedisReviewList, ReviewList
from ktsync.worker.state import ContactState, MemoryStateStore, RedisStateStore, StateStore
from ktsync.worker.telemetry import timeline_key
from tests.unit.twins import twin

state_store = twin(MemoryStateStore, RedisStateStore)
dead_letters = twin(MemoryDeadLetterStore, RedisDeadLetterStore)
review_list = twin(MemoryReviewList, RedisReviewList)
outbound = twin(MemoryOutbound, RedisOutbound)
deduper = twin(lambda: MemoryDeduper(ttl=60), lambda client, prefix: RedisDeduper(client, prefix, ttl=60))

ALEX = ContactState(source="hubspot", crm_contact_id="501", klicktipp_id="9", email="alex@shop.example",
                    tags=frozenset({"[CRM] A"}), occurred_at=100.0, subscription="subscribed")  # fmt: skip
NOW = time.time()
BOB = ContactState(source="hubspot", crm_contact_id="502", klicktipp_id="10", email="bob@shop.example")


def test_an_erasure_tombstone_drops_the_email_index_and_is_still_found_by_klicktipp_id(
    state_store: StateStore,
) -> None:
    state_store.put(ALEX)
    state_store.put(ALEX.erased(requested_at=150.0, now=160.0, by="operator"))
    record = state_store.get("hubspot", "501")
    assert record is not None
    assert (record.email, record.erased_at, record.erased_by) == (None, 160.0, "operator")
    assert state_store.find(email="alex@shop.example") is None
    assert state_store.find(klicktipp_id="9") == record
    assert state_store.oldest(before=10**10, limit=10) == []  # reconciliation never re-checks it


def test_forgetting_addresses_drops_their_index_and_the_event_markers_that_name_them(
    state_store: StateStore,
) -> None:
    # Given two contacts, and event ids a producer made of addresses (and a plain one)
    state_store.put(ALEX)
    state_store.put(BOB)
    for event_id in ("upsert-Alex@Shop.Example-1", "evt-7", "bob@shop.example:2"):
        state_store.mark_event("hubspot", event_id, ttl=60)

    # When Alex's address is forgotten
    removed = state_store.forget_addresses(["ALEX@shop.example"])

    # Then its index entry and its event marker went, Bob's stay, and so does the plain marker
    assert removed == 2
    assert state_store.find(email="alex@shop.example") is None
    assert state_store.find(email="bob@shop.example") == BOB
    assert not state_store.seen_event("hubspot", "upsert-Alex@Shop.Example-1")
    assert state_store.seen_event("hubspot", "evt-7")
    assert state_store.seen_event("hubspot", "bob@shop.example:2")
    assert state_store.forget_addresses(["alex@shop.example"]) == 0
    assert state_store.forget_addresses([]) == 0


def letter(letter_id: str) -> DeadLetter:
    return DeadLetter(id=letter_id, message={"crm_contact_id": letter_id}, task="ktsync.sync_contact",
                      reason="mapping", error={}, attempts=1, first_failed_at=NOW, last_failed_at=NOW)  # fmt: skip


def test_dead_letters_are_removed_many_at_once(dead_letters: DeadLetterStore) -> None:
    for letter_id in ("a", "b", "c"):
        dead_letters.add(letter(letter_id))
    assert dead_letters.remove_many(["a", "c", "nope", "a"]) == 2
    assert [d.id for d in dead_letters.list()] == ["b"]
    assert dead_letters.remove_many([]) == 0


def test_review_entries_are_removed_many_at_once(review_list: ReviewList) -> None:
    for request_id in ("r1", "r2", "r3"):
        review_list.add(request_id, {"email": f"{request_id}@shop.example", "received_at": 1.0})
    assert review_list.remove_many(["r1", "r3", "nope"]) == 2
    assert [i["id"] for i in review_list.list()] == ["r2"]
    assert review_list.remove_many([]) == 0


def test_outbound_entries_are_all_read_across_pages_and_deleted_by_id(
    outbound: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound_module, "SCAN_PAGE", 2)
    ids = [outbound.publish("contact.synced", {"crm_contact_id": str(n)}) for n in range(5)]
    assert [entry_id for entry_id, _, _ in outbound.entries()] == ids
    assert outbound.delete([ids[1], ids[3], "9999-0"]) == 2
    assert [payload["crm_contact_id"] for _, _, payload in outbound.entries()] == ["0", "2", "4"]
    assert outbound.delete([]) == 0


def test_webhook_ids_naming_an_address_are_forgotten(deduper: Deduper) -> None:
    # Given delivered webhook events, one whose generic producer put an address into its event id
    claim = deduper.claim("generic", ["shop:Alex@Shop.example:1", "shop:42", "shop:bob@shop.example"])
    deduper.commit(claim)

    # When Alex's address is forgotten
    assert deduper.forget(["alex@shop.example"]) == 1

    # Then that id is new again; the others are still duplicates
    again = deduper.claim("generic", ["shop:Alex@Shop.example:1", "shop:42", "shop:bob@shop.example"])
    assert again.claimed == ("shop:Alex@Shop.example:1",)
    assert again.done == {"shop:42", "shop:bob@shop.example"}
    assert deduper.forget([]) == 0


@pytest.fixture(params=["memory", "redis"])
def timelines(request: pytest.FixtureRequest, namespace: str) -> tuple[Timelines, Callable[[str, str], None]]:
    """The store, and how a test gives a contact a timeline (as the telemetry does)."""
    if request.param == "memory":
        memory = MemoryTimelines()
        return memory, lambda source, crm_id: memory.note((source, crm_id))
    client: redis.Redis = request.getfixturevalue("redis_client")

    def write(source: str, crm_id: str) -> None:
        client.lpush(timeline_key(namespace, source, crm_id), '{"kind": "event"}')

    return RedisTimelines(client, namespace), write


def test_a_contacts_timeline_is_forgotten(timelines: tuple[Timelines, Callable[[str, str], None]]) -> None:
    store, write = timelines
    write("hubspot", "501")
    write("hubspot", "502")
    assert store.forget(("hubspot", "501")) is True
    assert store.forget(("hubspot", "501")) is False
    assert store.forget(("hubspot", "502")) is True


def test_an_address_with_non_ascii_letters_is_forgotten_in_any_letter_case(
    state_store: StateStore, deduper: Deduper
) -> None:
    # Given an event marker and a webhook id naming an address with letters beyond ASCII
    state_store.mark_event("hubspot", "upsert-JOSÉ@Exämple.de-1", ttl=60)
    state_store.mark_event("hubspot", "upsert-jose@example.de-1", ttl=60)
    deduper.commit(deduper.claim("generic", ["shop:josé@exÄmple.de:1", "shop:jose@example.de:1"]))

    # When that address is forgotten
    assert state_store.forget_addresses(["josé@exämple.de"]) == 1
    assert deduper.forget(["josé@exämple.de"]) == 1

    # Then both went (a Redis glob class matches one byte, never a two-byte letter); the ASCII look-alike stays
    assert not state_store.seen_event("hubspot", "upsert-JOSÉ@Exämple.de-1")
    assert state_store.seen_event("hubspot", "upsert-jose@example.de-1")
    again = deduper.claim("generic", ["shop:josé@exÄmple.de:1", "shop:jose@example.de:1"])
    assert again.claimed == ("shop:josé@exÄmple.de:1",)
