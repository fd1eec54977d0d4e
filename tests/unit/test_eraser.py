"""The erasure's I/O shell over the in-memory twins of every store and a small KlickTipp directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from ktsync.worker.deadletter import DeadLetter, MemoryDeadLetterStore
from ktsync.worker.erasure import ERASED, Eraser, ErasureStores, MemoryTimelines, Subject
from ktsync.worker.klicktipp.errors import NotFound, ServerError
from ktsync.worker.klicktipp.models import Subscriber, SubscriptionStatus
from ktsync.worker.outbound import MemoryOutbound
from ktsync.worker.review import MemoryReviewList
from ktsync.worker.schedule import MemorySchedule, Parked
from ktsync.worker.state import ContactState, MemoryStateStore

NOW = time.time()
ALEX = "alex@shop.example"


@dataclass
class Directory:
    """KlickTipp's contacts as the erasure sees them (id -> address), and the calls it was asked."""

    contacts: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failing: bool = False

    def subscriber_get(self, subscriber_id: str) -> Subscriber:
        self.calls.append(("get", subscriber_id))
        if subscriber_id not in self.contacts:
            raise NotFound("no such contact", operation="api.subscriber.retrieve", status=404)
        return Subscriber(id=subscriber_id, email=self.contacts[subscriber_id], status="Subscribed",
                          subscription=SubscriptionStatus.SUBSCRIBED, bounce="", sms_phone=None, listid=None)  # fmt: skip

    def subscriber_search(self, email: str) -> str | None:
        self.calls.append(("search", "<address>"))
        return next((i for i, e in self.contacts.items() if e == email), None)

    def subscriber_delete(self, subscriber_id: str) -> None:
        self.calls.append(("delete", subscriber_id))
        if self.failing:
            raise ServerError("down", operation="api.subscriber.delete", status=503)
        if self.contacts.pop(subscriber_id, None) is None:
            raise NotFound("no such contact", operation="api.subscriber.delete", status=404)


@dataclass
class World:
    klicktipp: Directory
    stores: ErasureStores
    eraser: Eraser


@pytest.fixture
def world() -> World:
    stores = ErasureStores(MemoryStateStore(), MemoryDeadLetterStore(), MemoryReviewList(), MemoryOutbound(),
                           MemorySchedule(), MemoryTimelines())  # fmt: skip
    klicktipp = Directory({"9": ALEX, "10": "bob@shop.example"})
    return World(klicktipp, stores, Eraser(klicktipp, stores, lease=30, clock=lambda: NOW))


def letter(letter_id: str, message: dict[str, object], error: dict[str, object] | None = None) -> DeadLetter:
    return DeadLetter(id=letter_id, message=message, task="ktsync.sync_contact", reason="mapping",
                      error=error or {}, attempts=1, first_failed_at=NOW, last_failed_at=NOW, source="hubspot")  # fmt: skip


def upsert(crm_id: str, email: str) -> dict[str, object]:
    return {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": crm_id, "email": email,
            "occurred_at": 100}  # fmt: skip


def given_alex_synced_with_a_history(world: World) -> None:
    """Alex (hubspot/501, KlickTipp 9): state, a dead letter, a review entry, an outbound entry, a parked
    retry and a timeline; Bob (hubspot/502): a state and a dead letter that must stay."""
    s = world.stores
    s.state.put(
        ContactState(source="hubspot", crm_contact_id="501", klicktipp_id="9", email=ALEX, occurred_at=100)
    )
    s.state.put(
        ContactState(source="hubspot", crm_contact_id="502", klicktipp_id="10", email="bob@shop.example")
    )
    s.dead_letters.add(letter("dl-alex", upsert("501", ALEX)))
    s.dead_letters.add(letter("dl-bob", upsert("502", "bob@shop.example")))
    s.review.add("req-1", {"email": ALEX, "klicktipp_id": "9", "received_at": NOW})
    s.outbound.publish("contact.synced", {"source": "hubspot", "crm_contact_id": "501", "email": ALEX})
    s.outbound.publish(
        "contact.synced", {"source": "hubspot", "crm_contact_id": "502", "email": "bob@shop.example"}
    )
    s.schedule.park(Parked("ktsync.sync_contact", (upsert("501", ALEX),), {"failures": 1}, "t-1"), NOW + 300)
    assert isinstance(s.timelines, MemoryTimelines)
    s.timelines.note(("hubspot", "501"))


def test_erasing_a_crm_contact_deletes_it_in_klicktipp_and_purges_every_store(world: World) -> None:
    given_alex_synced_with_a_history(world)

    # When HubSpot's privacy deletion of 501 (it carries no address) is carried out
    report = world.eraser.erase(Subject.of(contacts=[("hubspot", "501")]), requested_at=150.0, by="test")

    # Then KlickTipp 9 is gone, read first (its address widens the search), and Bob's contact stays
    assert world.klicktipp.contacts == {"10": "bob@shop.example"}
    assert world.klicktipp.calls == [("get", "9"), ("delete", "9")]
    # and every store has lost Alex's items, and only those
    s = world.stores
    assert [d.id for d in s.dead_letters.list()] == ["dl-bob"]
    assert s.review.list() == []
    assert s.schedule.count() == 0
    assert s.timelines.contacts == set()  # type: ignore[attr-defined]
    synced = [p for _, kind, p in s.outbound.entries() if kind == "contact.synced"]
    assert [p["crm_contact_id"] for p in synced] == ["502"]
    # and only a tombstone with ids and times remains, announced to the CRM side without an address
    tombstone = s.state.get("hubspot", "501")
    assert tombstone is not None
    assert (tombstone.email, tombstone.klicktipp_id, tombstone.erasure_requested_at, tombstone.erased_at) == (
        None, "9", 150.0, NOW)  # fmt: skip
    assert s.state.find(email=ALEX) is None
    [(_, _, erased)] = [e for e in s.outbound.entries() if e[1] == ERASED]
    assert erased == {"source": "hubspot", "crm_contact_id": "501", "klicktipp_id": "9", "requested_at": 150.0,
                      "erased_at": NOW, "by": "test"}  # fmt: skip
    assert report.contacts == ("hubspot/501",)
    assert (report.klicktipp_deleted, report.klicktipp_gone) == (("9",), ())
    assert report.removed == {
        "dead_letters": 1,
        "review": 1,
        "outbound": 1,
        "parked": 1,
        "timelines": 1,
        "keys": 1,  # the e-mail index entry
    }
    assert ALEX not in repr(report.to_dict())
    assert s.state.get("hubspot", "502") is not None


def test_erasing_again_is_done_at_once(world: World) -> None:
    given_alex_synced_with_a_history(world)
    world.eraser.erase(Subject.of(contacts=[("hubspot", "501")]), requested_at=150.0, by="test")
    world.klicktipp.calls.clear()

    report = world.eraser.erase(Subject.of(contacts=[("hubspot", "501")]), requested_at=150.0, by="test")

    assert world.klicktipp.calls == [("get", "9")]  # already gone: nothing to delete
    assert (report.klicktipp_deleted, report.klicktipp_gone) == ((), ("9",))
    assert set(report.removed.values()) == {0}


def test_a_contact_that_only_failed_is_erased_by_its_address(world: World) -> None:
    # Given a contact ktsync never synced (KlickTipp has it from elsewhere): only a dead letter knows it
    world.klicktipp.contacts["11"] = "carol@shop.example"
    world.stores.dead_letters.add(letter("dl-carol", upsert("503", "Carol@Shop.example")))

    # When an operator forgets the address
    report = world.eraser.erase(Subject.of(emails=["carol@shop.example"]), requested_at=150.0, by="operator")

    # Then KlickTipp was searched by the address and the contact deleted; the CRM contact the dead
    # letter named has a tombstone now, so that a stale retry cannot bring the data back
    assert world.klicktipp.calls == [("search", "<address>"), ("delete", "11")]
    assert report.contacts == ("hubspot/503",)
    assert report.klicktipp_deleted == ("11",)
    tombstone = world.stores.state.get("hubspot", "503")
    assert tombstone is not None
    assert (tombstone.klicktipp_id, tombstone.erased_by) == ("11", "operator")
    assert world.stores.dead_letters.count() == 0


def test_a_person_only_klicktipp_knows_is_deleted_there_and_announced_by_id(world: World) -> None:
    report = world.eraser.erase(Subject.of(klicktipp_ids=["10"]), requested_at=150.0, by="operator")
    assert world.klicktipp.contacts == {"9": ALEX}
    assert report.contacts == ()  # no CRM contact known: no tombstone to write
    [(_, _, erased)] = list(world.stores.outbound.entries())
    assert (erased["klicktipp_id"], erased["crm_contact_id"]) == ("10", None)


def test_when_klicktipp_fails_nothing_is_purged_and_the_contact_is_given_back(world: World) -> None:
    given_alex_synced_with_a_history(world)
    world.klicktipp.failing = True

    with pytest.raises(ServerError):
        world.eraser.erase(Subject.of(contacts=[("hubspot", "501")]), requested_at=150.0, by="test")

    s = world.stores
    assert s.dead_letters.count() == 2
    stored = s.state.get("hubspot", "501")
    assert stored is not None
    assert stored.email == ALEX
    assert s.state.claim("hubspot", "501", None, lease=30) is not None  # the claim was released


def test_a_survey_reads_and_changes_nothing(world: World) -> None:
    given_alex_synced_with_a_history(world)
    survey = world.eraser.survey(Subject.of(contacts=[("hubspot", "501")]))
    assert survey.subject == Subject.of(contacts=[("hubspot", "501")], emails=[ALEX], klicktipp_ids=["9"])
    assert {store: len(keys) for store, keys in survey.doomed.items()} == {
        "dead_letters": 1, "review": 1, "outbound": 1, "parked": 1}  # fmt: skip
    assert world.klicktipp.calls == []
    assert world.stores.dead_letters.count() == 2
