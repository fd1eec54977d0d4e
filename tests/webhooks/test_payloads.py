"""Every vendor payload kind -> the contract messages and dedupe ids it maps to (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from ktsync.core.contract import parse_message
from ktsync.producers.webhooks.payloads import (
    Batch,
    PayloadError,
    close_event,
    collapse,
    decode_json,
    flat_params,
    generic_messages,
    hubspot_batch,
    klicktipp_event,
    zoho_notification,
)
from tests.webhooks.helpers import NOW, close_body, hubspot_event, zoho_body

T_MS = 1_795_341_600_000
CHANGED, DELETED = "crm.contact_changed", "contact.deleted"


def summary(batch: Batch) -> list[tuple[str | None, list[tuple[str, str, str | None]]]]:
    """(dedupe id, [(type, contact id, event_id)]) per event; every message is contract-valid."""
    for event in batch.events:
        for message in event.messages:
            parse_message(dict(message))
    return [
        (e.dedupe_id, [(m["type"], m["crm_contact_id"], m.get("event_id")) for m in e.messages])
        for e in batch.events
    ]


def problems(error: pytest.ExceptionInfo[PayloadError]) -> list[tuple[int | None, str]]:
    return [(p.index, p.field) for p in error.value.problems]


# --- HubSpot --------------------------------------------------------------------------------------

HUBSPOT_TABLE = [
    ("contact.creation", {}, [(CHANGED, "501", "7")]),
    (
        "contact.propertyChange",
        {"propertyName": "email", "propertyValue": "a@b.example"},
        [(CHANGED, "501", "7")],
    ),
    ("contact.restore", {}, [(CHANGED, "501", "7")]),
    ("contact.deletion", {}, [(DELETED, "501", "7")]),
    ("contact.privacyDeletion", {}, [(DELETED, "501", "7")]),
    ("object.creation", {"objectTypeId": "0-1"}, [(CHANGED, "501", "7")]),
    (
        "object.propertyChange",
        {"objectTypeId": "0-1", "propertyName": "lifecyclestage"},
        [(CHANGED, "501", "7")],
    ),
    ("object.restore", {"objectName": "contact"}, [(CHANGED, "501", "7")]),
    ("object.deletion", {"objectTypeId": "0-1"}, [(DELETED, "501", "7")]),
    ("object.privacyDeletion", {"objectTypeId": "0-1"}, [(DELETED, "501", "7")]),
]


@pytest.mark.parametrize(("kind", "extra", "expected"), HUBSPOT_TABLE)
def test_hubspot_contact_events(
    kind: str, extra: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    batch = hubspot_batch([hubspot_event(7, kind, 501, at_ms=T_MS, **extra)])
    assert summary(batch) == [("7", expected)]
    message = batch.events[0].messages[0]
    assert message["source"] == "hubspot"
    assert message["occurred_at"] == T_MS  # milliseconds, as HubSpot sent them


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("contact.merge", {"primaryObjectId": 501, "mergedObjectIds": [502, 503], "newObjectId": 501}),
        ("object.merge", {"objectTypeId": "0-1", "primaryObjectId": 501, "mergedObjectIds": [502, 503, 501]}),
    ],
)
def test_hubspot_merge_changes_the_primary_and_deletes_the_merged(kind: str, extra: dict[str, Any]) -> None:
    batch = hubspot_batch([hubspot_event(8, kind, None, at_ms=T_MS, **extra)])
    # one vendor event, three contacts: each message gets an event_id of its own
    assert summary(batch) == [
        ("8", [(CHANGED, "501", "8:501"), (DELETED, "502", "8:502"), (DELETED, "503", "8:503")])
    ]


@pytest.mark.parametrize(
    ("extra", "contacts"),
    [
        (
            {"objectId": 501, "associationType": "CONTACT_TO_COMPANY", "fromObjectId": 501, "toObjectId": 9},
            ["501"],
        ),
        ({"associationType": "CONTACT_TO_COMPANY", "fromObjectId": 501, "toObjectId": 9}, ["501"]),
        ({"associationType": "COMPANY_TO_CONTACT", "fromObjectId": 9, "toObjectId": 501}, ["501"]),
        (
            {"fromObjectTypeId": "0-1", "toObjectTypeId": "0-1", "fromObjectId": 501, "toObjectId": 502},
            ["501", "502"],
        ),
    ],
)
def test_hubspot_association_changes_touch_the_contact_ends(
    extra: dict[str, Any], contacts: list[str]
) -> None:
    event = hubspot_event(9, "contact.associationChange", None, at_ms=T_MS, **extra)
    [(dedupe_id, messages)] = summary(hubspot_batch([event]))
    assert dedupe_id == "9"
    assert [contact for _, contact, _ in messages] == contacts


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("company.creation", {}),
        ("deal.propertyChange", {}),
        ("object.creation", {"objectTypeId": "0-2"}),
        ("object.propertyChange", {"objectName": "company"}),
        ("contact.somethingNew", {}),
        ("", {}),
    ],
)
def test_hubspot_events_about_other_objects_are_ignored(kind: str, extra: dict[str, Any]) -> None:
    batch = hubspot_batch([hubspot_event(1, kind, 5, at_ms=T_MS, **extra)])
    assert (batch.events, batch.received, batch.ignored) == ((), 1, 1)


def test_a_hubspot_batch_maps_every_event_and_counts_the_ignored() -> None:
    batch = hubspot_batch(
        [
            hubspot_event(1, "contact.creation", 501, at_ms=T_MS),
            hubspot_event(2, "company.creation", 77, at_ms=T_MS),
            hubspot_event(3, "contact.deletion", 502, at_ms=T_MS),
        ]
    )
    assert [e.dedupe_id for e in batch.events] == ["1", "3"]
    assert (batch.received, batch.ignored) == (3, 1)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"eventId": 1}, [(None, "$")]),
        ([1, "x"], [(0, "$"), (1, "$")]),
        ([hubspot_event(1, "contact.creation", None, at_ms=T_MS)], [(0, "objectId")]),
        ([hubspot_event(1, "contact.creation", True, at_ms=T_MS)], [(0, "objectId")]),  # type: ignore[arg-type]
        ([{**hubspot_event(1, "contact.creation", 5, at_ms=T_MS), "eventId": None}], [(0, "eventId")]),
        (
            [{**hubspot_event(1, "contact.creation", 5, at_ms=T_MS), "occurredAt": "soon"}],
            [(0, "occurredAt")],
        ),
        ([hubspot_event(1, "contact.merge", None, at_ms=T_MS, primaryObjectId=5)], [(0, "mergedObjectIds")]),
        (
            [
                hubspot_event(1, "contact.creation", 5, at_ms=T_MS),
                hubspot_event(2, "contact.deletion", None, at_ms=T_MS),
            ],
            [(1, "objectId")],
        ),
    ],
)
def test_malformed_hubspot_batches_name_every_problem(
    body: object, expected: list[tuple[int | None, str]]
) -> None:
    with pytest.raises(PayloadError) as caught:
        hubspot_batch(body)
    assert problems(caught) == expected


# --- collapse -------------------------------------------------------------------------------------


def test_collapse_keeps_the_newest_message_per_contact() -> None:
    batch = hubspot_batch(
        [
            hubspot_event(1, "contact.creation", 501, at_ms=T_MS),
            hubspot_event(2, "contact.propertyChange", 501, at_ms=T_MS + 2000),
            hubspot_event(3, "contact.propertyChange", 501, at_ms=T_MS + 1000),
            hubspot_event(4, "contact.creation", 502, at_ms=T_MS),
        ]
    )
    kept = collapse([m for e in batch.events for m in e.messages])
    assert [(m["crm_contact_id"], m["event_id"]) for m in kept] == [("501", "2"), ("502", "4")]


def test_collapse_lets_a_newer_deletion_win_and_a_later_restore_win_over_it() -> None:
    deleted_last = hubspot_batch(
        [
            hubspot_event(1, "contact.creation", 5, at_ms=T_MS),
            hubspot_event(2, "contact.deletion", 5, at_ms=T_MS + 1),
        ]
    )
    restored_last = hubspot_batch(
        [
            hubspot_event(3, "contact.deletion", 5, at_ms=T_MS),
            hubspot_event(4, "contact.restore", 5, at_ms=T_MS + 1),
        ]
    )
    assert [m["type"] for m in collapse([m for e in deleted_last.events for m in e.messages])] == [DELETED]
    assert [m["type"] for m in collapse([m for e in restored_last.events for m in e.messages])] == [CHANGED]


def test_collapse_keeps_the_later_of_two_events_at_the_same_time() -> None:
    same = hubspot_batch(
        [
            hubspot_event(1, "contact.creation", 5, at_ms=T_MS),
            hubspot_event(2, "contact.deletion", 5, at_ms=T_MS),
        ]
    )
    assert [m["event_id"] for m in collapse([m for e in same.events for m in e.messages])] == ["2"]


# --- Close ----------------------------------------------------------------------------------------

CLOSE_TABLE = [
    ("created", {}, [(CHANGED, "cont_1", "ev_1")]),
    ("updated", {}, [(CHANGED, "cont_1", "ev_1")]),
    ("deleted", {"data": {}}, [(DELETED, "cont_1", "ev_1")]),
    (
        "merged",
        {"meta": {"merge_source_contact_id": "cont_0", "merge_destination_contact_id": "cont_1"}},
        [(CHANGED, "cont_1", "ev_1:cont_1"), (DELETED, "cont_0", "ev_1:cont_0")],
    ),
    ("merged", {"meta": {}}, [(CHANGED, "cont_1", "ev_1")]),
]


@pytest.mark.parametrize(("action", "event", "expected"), CLOSE_TABLE)
def test_close_contact_events(
    action: str, event: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    batch = close_event(close_body(action, **event), now=NOW)
    assert summary(batch) == [("ev_1", expected)]
    assert batch.events[0].messages[0]["source"] == "close"


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (close_body("updated", "lead"), "object_type 'lead' is not handled"),
        (close_body("created", "opportunity"), "object_type 'opportunity' is not handled"),
        (close_body("archived"), "action 'archived' is not handled"),
    ],
)
def test_close_events_about_other_objects_are_ignored_and_say_so(body: dict[str, Any], note: str) -> None:
    batch = close_event(body, now=NOW)
    assert (batch.events, batch.ignored, batch.note) == ((), 1, note)


@pytest.mark.parametrize(
    ("dates", "occurred_at"),
    [
        ({"date_updated": "2026-11-22T10:00:00+00:00"}, NOW),
        ({"date_updated": "2026-11-22T10:00:00.000000"}, NOW),  # Close's UTC without a zone
        ({"date_updated": None, "date_created": "2026-11-22T09:00:00Z"}, NOW - 3600),
        ({"date_updated": None, "date_created": None}, NOW),  # receipt time
    ],
)
def test_close_occurred_at(dates: dict[str, Any], occurred_at: float) -> None:
    batch = close_event(close_body("updated", **dates), now=NOW)
    assert parse_message(dict(batch.events[0].messages[0])).occurred_at == occurred_at


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "event"),
        ({"event": "x"}, "event"),
        (close_body(id=None), "event.id"),
        (close_body(object_id=""), "event.object_id"),
        (close_body(date_updated="last tuesday"), "event.date_updated"),
    ],
)
def test_malformed_close_events(body: object, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        close_event(body, now=NOW)
    assert problems(caught) == [(None, field)]


# --- Zoho -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("insert", CHANGED),
        ("create", CHANGED),
        ("update", CHANGED),
        ("edit", CHANGED),
        ("delete", DELETED),
        ("Update", CHANGED),
    ],
)
def test_zoho_operations_in_both_vocabularies(operation: str, kind: str) -> None:
    batch = zoho_notification(zoho_body(operation, ids=["41", 42]), body_digest="d" * 64, now=NOW)
    digest = "d" * 64
    assert summary(batch) == [(digest, [(kind, "41", f"{digest}:41"), (kind, "42", f"{digest}:42")])]
    assert batch.events[0].messages[0]["occurred_at"] == NOW  # receipt time


def test_zoho_without_server_time_is_not_deduplicated() -> None:
    # identical bodies for two genuine edits must both go through
    body = zoho_body("update", ids=["41"])
    del body["server_time"]
    assert summary(zoho_notification(body, body_digest="d" * 64, now=NOW)) == [
        (None, [(CHANGED, "41", None)])
    ]


@pytest.mark.parametrize(
    ("body", "note"),
    [
        (zoho_body(module="Leads"), "module 'Leads' is not handled"),
        (zoho_body("approve"), "operation 'approve' is not handled"),
    ],
)
def test_zoho_other_modules_and_operations_are_ignored(body: dict[str, Any], note: str) -> None:
    batch = zoho_notification(body, body_digest="d" * 64, now=NOW)
    assert (batch.events, batch.note) == ((), note)


@pytest.mark.parametrize(
    ("body", "field"), [(["x"], "$"), (zoho_body(ids="41"), "ids"), (zoho_body(ids=[None]), "ids.0")]
)
def test_malformed_zoho_notifications(body: object, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        zoho_notification(body, body_digest="d" * 64, now=NOW)
    assert problems(caught) == [(None, field)]


# --- KlickTipp --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "query", "expected"),
    [
        ("application/x-www-form-urlencoded", b"email=a%40b.example&Authorization=t&kid=9", b"", {"email": "a@b.example", "Authorization": "t", "kid": "9"}),
        ("application/x-www-form-urlencoded; charset=utf-8", b"email=a%40b.example&email=other", b"", {"email": "a@b.example"}),
        ("application/json", b'{"email":"a@b.example","kid":9,"vip":true,"x":null}', b"", {"email": "a@b.example", "kid": "9", "vip": "true", "x": ""}),
        ("", b'{"email":"a@b.example"}', b"", {"email": "a@b.example"}),
        ("", b"email=a%40b.example", b"", {"email": "a@b.example"}),
        ("application/x-www-form-urlencoded", b"email=body%40b.example", b"email=url%40b.example&Authorization=t", {"email": "body@b.example", "Authorization": "t"}),
        ("", b"", b"email=a%40b.example&Authorization=t", {"email": "a@b.example", "Authorization": "t"}),
    ],
)  # fmt: skip
def test_klicktipp_parameters_from_form_json_and_query(
    content_type: str, body: bytes, query: bytes, expected: dict[str, str]
) -> None:
    assert flat_params(content_type=content_type, body=body, query=query) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"[1]"),
        ("application/json", b'{"email": {"nested": 1}}'),
        ("application/json", b"{not json"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("application/x-www-form-urlencoded", b"email=\xff"),
    ],
)
def test_klicktipp_parameters_that_are_not_a_flat_map(content_type: str, body: bytes) -> None:
    with pytest.raises(PayloadError):
        flat_params(content_type=content_type, body=body, query=b"")


@pytest.mark.parametrize(
    ("deletion", "kind"), [(False, "klicktipp.contact_changed"), (True, "klicktipp.deletion_requested")]
)
def test_klicktipp_events(deletion: bool, kind: str) -> None:
    batch = klicktipp_event(
        {"email": "alex@shop.example", "kid": "123"}, deletion=deletion, id_param="kid", now=NOW
    )
    [event] = batch.events
    assert event.dedupe_id is None  # KlickTipp sends no id: never deduplicated
    assert dict(event.messages[0]) == {
        "v": 1, "type": kind, "source": "klicktipp", "email": "alex@shop.example", "klicktipp_id": "123", "occurred_at": NOW,
    }  # fmt: skip
    parse_message(dict(event.messages[0]))


@pytest.mark.parametrize(
    ("params", "field"), [({"kid": "1"}, "email"), ({"email": "not-an-address"}, "email"), ({"email": "a@b.example", "kid": "x" * 129}, "kid")]
)  # fmt: skip
def test_malformed_klicktipp_events(params: dict[str, str], field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        klicktipp_event(params, deletion=False, id_param="kid", now=NOW)
    assert problems(caught) == [(None, field)]


# --- generic ------------------------------------------------------------------------------------

VALID = {
    "v": 1,
    "type": "contact.upsert",
    "source": "shop",
    "crm_contact_id": "7",
    "email": "a@b.example",
    "occurred_at": 1,
}


def test_generic_accepts_one_message_or_an_array() -> None:
    assert summary(generic_messages(VALID)) == [(None, [("contact.upsert", "7", None)])]
    both = generic_messages([{**VALID, "event_id": "e1"}, {**VALID, "crm_contact_id": "8"}])
    assert [e.dedupe_id for e in both.events] == ["shop:e1", None]
    assert both.collapse is False  # a producer's messages are enqueued exactly as sent


def test_generic_lists_every_rejection_with_its_index() -> None:
    with pytest.raises(PayloadError) as caught:
        generic_messages([VALID, {**VALID, "email": "nope", "emial": "x"}, "text", {**VALID, "v": 2}])
    assert problems(caught) == [(1, "email"), (1, "emial"), (2, "$"), (3, "v")]


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"nul"])
def test_a_body_that_is_not_json(body: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_json(body)
    assert [p.reason for p in caught.value.problems] == ["not valid JSON"]
