"""Planning: which calls bring a contact to its desired state, and when no call is needed at all."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ktsync.worker.state.base import ContactState
from ktsync.worker.sync.desired import Desired, Skip, skip_reason
from ktsync.worker.sync.plan import first_tag, identity_call, owned_names, tag_calls

TAG_IDS = {"[CRM] A": "11", "[CRM] B": "12", "[CRM] C": "13"}
DESIRED = Desired("alex@shop.example", None, {"fieldFirstName": "Alex"}, frozenset({"[CRM] A", "[CRM] B"}))


def stored(**changes: object) -> ContactState:
    base = ContactState(
        source="hubspot",
        crm_contact_id="501",
        klicktipp_id="9",
        email=DESIRED.email,
        fields_hash=DESIRED.fields_hash,
        state_hash=DESIRED.state_hash,
        tags=DESIRED.tags,
        occurred_at=100.0,
        subscription="subscribed",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_contact_without_a_known_id_is_added_or_updated_by_email_with_one_tag_and_the_listid() -> None:
    call = identity_call(DESIRED, None, listid=23, tagid="11")
    assert call is not None
    assert call.operation == "api.subscriber.create"
    assert call.args["listid"] == 23
    assert call.args["tagid"] == "11"
    assert call.args["email"] == "alex@shop.example"


def test_a_known_contact_is_updated_by_id_and_only_when_something_changed() -> None:
    assert identity_call(DESIRED, stored(), listid=23, tagid=None) is None
    changed = identity_call(DESIRED, stored(fields_hash="old"), listid=23, tagid=None)
    assert changed is not None
    assert changed.operation == "api.subscriber.update"
    assert changed.args["subscriber_id"] == "9"
    assert changed.args["newemail"] is None


def test_an_email_change_updates_the_existing_contact_by_id_never_creates_one() -> None:
    call = identity_call(DESIRED, stored(email="old@shop.example"), listid=23, tagid=None)
    assert call is not None
    assert call.operation == "api.subscriber.update"
    assert call.args["newemail"] == "alex@shop.example"
    assert "e-mail changed" in call.reason


def test_a_tombstoned_contact_is_added_again_not_updated_by_its_old_id() -> None:
    call = identity_call(DESIRED, stored(deleted_at=5.0), listid=23, tagid=None)
    assert call is not None
    assert call.operation == "api.subscriber.create"


@pytest.mark.parametrize(
    ("desired", "current", "expected"),
    [
        ({"[CRM] A", "[CRM] B"}, set(), [("api.subscriber.tag", ["11", "12"])]),
        ({"[CRM] A"}, {"[CRM] A", "[CRM] C"}, [("api.subscriber.untag", "13")]),
        ({"[CRM] B"}, {"[CRM] A"}, [("api.subscriber.tag", ["12"]), ("api.subscriber.untag", "11")]),
        ({"[CRM] A"}, {"[CRM] A"}, []),
    ],
)
def test_tags_reach_the_final_state_with_one_tag_call_and_one_untag_per_removal(
    desired: set[str], current: set[str], expected: list[tuple[str, object]]
) -> None:
    calls = tag_calls(
        email="a@shop.example", desired=frozenset(desired), current=frozenset(current), tag_ids=TAG_IDS
    )
    assert [(c.operation, c.args.get("tagids", c.args.get("tagid"))) for c in calls] == expected


def test_without_an_email_no_tag_call_is_planned() -> None:
    assert tag_calls(email=None, desired=frozenset({"[CRM] A"}), current=frozenset(), tag_ids=TAG_IDS) == []


def test_the_first_missing_tag_rides_along_with_add_or_update() -> None:
    assert first_tag(frozenset({"[CRM] B", "[CRM] A"}), frozenset(), TAG_IDS) == "11"
    assert first_tag(frozenset({"[CRM] A"}), frozenset({"[CRM] A"}), TAG_IDS) is None


def test_only_prefixed_manual_tags_count_as_owned() -> None:
    names = {"11": "[CRM] A", "10": "Webinar 2026", "900": "SmartLink Clicked"}
    assert owned_names(["11", "10", "900", "404"], names, "[CRM]") == {"[CRM] A"}


@pytest.mark.parametrize(
    ("occurred_at", "record", "desired_hash", "duplicate", "expected"),
    [
        (200.0, None, "h", False, None),
        (200.0, None, "h", True, Skip.DUPLICATE),
        (50.0, stored(), "other", False, Skip.STALE),
        (200.0, stored(), DESIRED.state_hash, False, Skip.UNCHANGED),
        (100.0, stored(), DESIRED.state_hash, False, Skip.UNCHANGED),
        (200.0, stored(), "other", False, None),
        (100.0, stored(deleted_at=1.0), "other", False, Skip.STALE),  # not older, but not after the deletion
        (101.0, stored(deleted_at=1.0), DESIRED.state_hash, False, None),  # after a deletion: apply again
    ],
)
def test_skip_decisions(
    occurred_at: float, record: ContactState | None, desired_hash: str, duplicate: bool, expected: Skip | None
) -> None:
    assert (
        skip_reason(occurred_at=occurred_at, stored=record, desired_hash=desired_hash, duplicate=duplicate)
        is expected
    )


def test_the_state_hash_covers_email_fields_and_tags() -> None:
    variants = [
        Desired("b@shop.example", None, DESIRED.fields, DESIRED.tags),
        Desired(DESIRED.email, None, {"fieldFirstName": "Bea"}, DESIRED.tags),
        Desired(DESIRED.email, None, DESIRED.fields, frozenset({"[CRM] A"})),
        Desired(DESIRED.email, "+491701234567", DESIRED.fields, DESIRED.tags),
    ]
    assert len({DESIRED.state_hash, *(v.state_hash for v in variants)}) == 5
    assert (
        Desired(DESIRED.email, None, dict(DESIRED.fields), frozenset(DESIRED.tags)).state_hash
        == DESIRED.state_hash
    )
