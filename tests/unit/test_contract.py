"""The message contract v1: what it accepts, and that every rejection names the field and why."""

from __future__ import annotations

import pytest

from ktsync.contract import (
    ContactDeleted,
    ContactUpsert,
    ContractError,
    DeletionRequested,
    parse_json,
    parse_message,
    parse_timestamp,
)

UPSERT = {
    "v": 1,
    "type": "contact.upsert",
    "source": "hubspot",
    "crm_contact_id": "501",
    "email": "alex@shop.example",
    "sms_number": "+491701234567",
    "properties": {
        "firstname": "Alex",
        "lead_value": 19.99,
        "vip": True,
        "gone": None,
        "lists": ["Newsletter"],
    },
    "occurred_at": "2026-11-22T10:00:00Z",
    "event_id": "evt-1",
}


def reasons(exc: pytest.ExceptionInfo[ContractError]) -> dict[str, str]:
    return {e.field: e.reason for e in exc.value.errors}


def test_the_readme_example_of_each_type_is_accepted() -> None:
    upsert = parse_message(UPSERT)
    deleted = parse_message(
        {
            "v": 1,
            "type": "contact.deleted",
            "source": "hubspot",
            "crm_contact_id": "501",
            "occurred_at": 1795341600,
        }
    )
    request = parse_message(
        {
            "v": 1,
            "type": "klicktipp.deletion_requested",
            "email": "a@shop.example",
            "occurred_at": 1795341600000,
        }
    )

    assert isinstance(upsert, ContactUpsert)
    assert upsert.crm_contact_id == "501"
    assert upsert.properties["lists"] == ["Newsletter"]
    assert upsert.occurred_at == 1795341600.0
    assert upsert.dry_run is False
    assert isinstance(deleted, ContactDeleted)
    assert isinstance(request, DeletionRequested)
    assert request.source == "klicktipp"
    assert request.occurred_at == 1795341600.0  # milliseconds recognised


def test_a_numeric_crm_id_becomes_its_decimal_string() -> None:
    assert parse_message({**UPSERT, "crm_contact_id": 501}).crm_contact_id == "501"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"v": 2}, "v", "unsupported version 2"),
        ({"v": None}, "v", "is required"),
        ({"type": "contact.merged"}, "type", "must be one of"),
        ({"source": "Hub Spot"}, "source", "a-z, 0-9"),
        ({"source": "x" * 33}, "source", "1 to 32"),
        ({"crm_contact_id": ""}, "crm_contact_id", "1 to 128"),
        ({"crm_contact_id": None}, "crm_contact_id", "Field may not be null"),
        ({"email": "not-an-address"}, "email", "Not a valid email"),
        ({"email": None, "sms_number": None}, "email", "email or sms_number is required"),
        ({"sms_number": "call me"}, "sms_number", "not a phone number"),
        ({"properties": {"nested": {"a": 1}}}, "properties.nested", "must be a string, number"),
        ({"properties": {"lists": ["a", 1]}}, "properties.lists", "only contain strings"),
        ({"properties": ["a"]}, "properties", "must be an object"),
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at", "no time zone"),
        ({"occurred_at": "yesterday"}, "occurred_at", "not an ISO 8601"),
        ({"occurred_at": -5}, "occurred_at", "non-negative"),
        ({"emial": "typo@shop.example"}, "emial", "unknown field"),
        ({"dry_run": "maybe"}, "dry_run", "Not a valid boolean"),
    ],
)
def test_each_rejection_names_the_field_and_the_reason(
    change: dict[str, object], field: str, reason: str
) -> None:
    # Given a message with one bad field
    message = {**UPSERT, **change}

    # When it is parsed, Then the error names that field and why
    with pytest.raises(ContractError) as exc:
        parse_message(message)
    assert field in reasons(exc), exc.value
    assert reason in reasons(exc)[field]


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ContractError) as exc:
        parse_message({**UPSERT, "source": "BAD", "email": "nope", "occurred_at": "x"})
    assert set(reasons(exc)) == {"source", "email", "occurred_at"}


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "{not json"])
def test_non_objects_and_broken_json_are_rejected_with_a_reason(raw: str) -> None:
    with pytest.raises(ContractError) as exc:
        parse_json(raw)
    assert "$" in reasons(exc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T10:00:00Z", 1795341600.0),
        ("2026-11-22T11:00:00+01:00", 1795341600.0),
        (1795341600, 1795341600.0),
        (1795341600000, 1795341600.0),
        ("1795341600", 1795341600.0),
        (1795341600.5, 1795341600.5),
    ],
)
def test_occurred_at_accepts_iso_with_zone_seconds_and_milliseconds(value: object, expected: float) -> None:
    assert parse_timestamp(value) == expected


def test_a_deletion_request_needs_an_email_or_a_klicktipp_id() -> None:
    with pytest.raises(ContractError) as exc:
        parse_message({"v": 1, "type": "klicktipp.deletion_requested", "occurred_at": 1})
    assert "email" in reasons(exc)
