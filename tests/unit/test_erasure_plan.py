"""Privacy deletions, the pure part: whom an erasure concerns, what it removes, when an event is stale."""

from __future__ import annotations

from typing import Any

import pytest

from ktsync.worker.erasure.plan import (
    DEAD_LETTERS,
    OUTBOUND,
    PARKED,
    REVIEW,
    Item,
    Subject,
    about,
    doomed,
    identity,
    mentions,
    widen,
)
from ktsync.worker.state.base import ContactState
from ktsync.worker.sync.desired import Skip, skip_reason

ALEX = Subject.of(contacts=[("hubspot", "501")])


def record(**fields: Any) -> dict[str, Any]:
    return fields


def test_a_subject_compares_addresses_trimmed_and_in_lower_case() -> None:
    subject = Subject.of(emails=[" Alex@Shop.Example ", None, "not an address"], klicktipp_ids=["9", None])
    assert subject.emails == {"alex@shop.example"}
    assert subject.klicktipp_ids == {"9"}
    assert not Subject()


@pytest.mark.parametrize(
    ("item", "is_about"),
    [
        (record(source="hubspot", crm_contact_id="501", email="x@y.example"), True),
        (record(source="hubspot", crm_contact_id=501), True),  # numbers are ids too
        (record(source="zoho", crm_contact_id="501"), False),  # another CRM's 501
        (record(email="ALEX@shop.example"), True),
        (record(klicktipp_id=9), True),
        (record(klicktipp_id=True), False),
        (record(email="bob@shop.example", klicktipp_id="10"), False),
        (record(raw="garbage"), False),
    ],
)
def test_a_record_is_about_the_subject_by_contact_address_or_klicktipp_id(
    item: dict[str, Any], is_about: bool
) -> None:
    subject = Subject.of(contacts=[("hubspot", "501")], emails=["alex@shop.example"], klicktipp_ids=["9"])
    assert about(subject, item) is is_about


def test_identity_reads_what_a_record_says() -> None:
    assert identity(record(source="hubspot", crm_contact_id="501", email="A@b.example", klicktipp_id=9)) == (
        Subject.of(contacts=[("hubspot", "501")], emails=["a@b.example"], klicktipp_ids=["9"])
    )


def test_the_subject_widens_through_records_until_nothing_new_is_learnt() -> None:
    # Given a contact known by its CRM id only, a dead letter of it with its address, and a review
    # entry of that address with its KlickTipp id, which an outbound entry of another source shares
    records = [
        record(source="hubspot", crm_contact_id="501", email="alex@shop.example"),
        record(email="alex@shop.example", klicktipp_id="9"),
        record(source="zoho", crm_contact_id="77", klicktipp_id="9"),
        record(source="hubspot", crm_contact_id="502", email="bob@shop.example"),
    ]
    # When it is widened, in any order of the records
    forward, backward = widen(ALEX, records), widen(ALEX, list(reversed(records)))
    # Then it is the person behind all three, and not Bob
    assert (
        forward
        == backward
        == Subject.of(
            contacts=[("hubspot", "501"), ("zoho", "77")], emails=["alex@shop.example"], klicktipp_ids=["9"]
        )
    )


def test_an_address_mentioned_anywhere_dooms_an_item_but_does_not_widen_the_subject() -> None:
    subject = Subject.of(contacts=[("hubspot", "501")], emails=["alex@shop.example"])
    conflict = {
        "message": {"source": "hubspot", "crm_contact_id": "502"},
        "error": {"new_email": "Alex@Shop.example"},
    }
    assert mentions(subject, conflict)
    assert not mentions(Subject.of(contacts=[("hubspot", "501")]), conflict)
    assert widen(subject, [conflict["message"]]) == subject


def test_doomed_lists_the_items_about_the_subject_or_mentioning_it_per_store() -> None:
    subject = Subject.of(contacts=[("hubspot", "501")], emails=["alex@shop.example"], klicktipp_ids=["9"])
    items = [
        Item(DEAD_LETTERS, "dl-1", record(source="hubspot", crm_contact_id="501")),
        Item(
            DEAD_LETTERS,
            "dl-2",
            record(source="hubspot", crm_contact_id="502"),
            {"error": "alex@shop.example"},
        ),
        Item(DEAD_LETTERS, "dl-3", record(source="hubspot", crm_contact_id="503"), {"error": "boom"}),
        Item(REVIEW, "req-1", record(email="alex@shop.example")),
        Item(OUTBOUND, "1-0", record(source="hubspot", crm_contact_id="502", email="bob@shop.example")),
        Item(OUTBOUND, "2-0", record(klicktipp_id="9")),
        Item(PARKED, '{"task": "x"}', record(source="hubspot", crm_contact_id="501")),
    ]
    assert doomed(subject, items) == {
        DEAD_LETTERS: ("dl-1", "dl-2"),
        REVIEW: ("req-1",),
        OUTBOUND: ("2-0",),
        PARKED: ('{"task": "x"}',),
    }
    assert doomed(subject, []) == {DEAD_LETTERS: (), REVIEW: (), OUTBOUND: (), PARKED: ()}


LIVE = ContactState(source="hubspot", crm_contact_id="501", klicktipp_id="9", email="alex@shop.example",
                    tags=frozenset({"[CRM] A"}), occurred_at=100.0, subscription="subscribed", state_hash="h")  # fmt: skip


def test_the_erasure_tombstone_keeps_ids_and_times_only() -> None:
    tombstone = LIVE.erased(requested_at=150.0, now=160.0, by="privacy deletion (event 7)")
    assert (tombstone.source, tombstone.crm_contact_id, tombstone.klicktipp_id) == ("hubspot", "501", "9")
    assert (tombstone.email, tombstone.sms_number, tombstone.tags, tombstone.state_hash) == (
        None,
        None,
        frozenset(),
        None,
    )
    assert tombstone.subscription == "unknown"
    assert (tombstone.occurred_at, tombstone.erasure_requested_at, tombstone.erased_at) == (
        150.0,
        150.0,
        160.0,
    )
    assert tombstone.is_tombstone
    assert ContactState.from_json(tombstone.to_json()) == tombstone


def test_a_request_older_than_the_last_change_still_erases_and_keeps_the_newer_time() -> None:
    tombstone = LIVE.erased(requested_at=90.0, now=160.0, by="operator")
    assert (tombstone.occurred_at, tombstone.erasure_requested_at) == (100.0, 90.0)


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        (149.0, Skip.STALE),  # a retry of an event from before the request: never resurrects the data
        (150.0, Skip.STALE),
        (151.0, None),  # a new subscription through the CRM, after the request: applied
    ],
)
def test_after_an_erasure_only_events_newer_than_the_request_apply(
    occurred_at: float, expected: Skip | None
) -> None:
    tombstone = LIVE.erased(requested_at=150.0, now=160.0, by="operator")
    assert (
        skip_reason(occurred_at=occurred_at, stored=tombstone, desired_hash="h", duplicate=False) == expected
    )


def test_a_contact_back_after_an_erasure_keeps_the_erasure_history() -> None:
    tombstone = LIVE.erased(requested_at=150.0, now=160.0, by="operator")
    back = ContactState(source="hubspot", crm_contact_id="501", email="alex@shop.example", occurred_at=200.0)
    kept = back.with_erasure_of(tombstone)
    assert (kept.erased_at, kept.erasure_requested_at, kept.erased_by, kept.is_tombstone) == (
        160.0,
        150.0,
        "operator",
        False,
    )
    assert back.with_erasure_of(LIVE) == back
    assert back.with_erasure_of(None) == back
    assert (
        kept.tombstone(occurred_at=300.0, now=310.0).erased_at == 160.0
    )  # an ordinary deletion keeps it too
