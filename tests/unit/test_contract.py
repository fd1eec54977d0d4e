"""The message contract v1: what it accepts, and that every rejection names the field and why."""

from __future__ import annotations

import pytest

from ktsync.core.contract import (
    ContactDeleted,
    ContactUpsert,
    ContractError,
    DeletionRequested,
    parse_json,
    parse_message,
    parse_timestamp,
)
from tests.contract_cases import ACCEPTED, DELETED, DELETION_REQUESTED, REJECTED, SCHEMA_GAPS, UPSERT, upsert


def reasons(exc: pytest.ExceptionInfo[ContractError]) -> dict[str, str]:
    return {e.field: e.reason for e in exc.value.errors}


def test_the_readme_example_of_each_type_is_accepted() -> None:
    contact = parse_message(UPSERT)
    deleted = parse_message(DELETED)
    request = parse_message(DELETION_REQUESTED)

    assert isinstance(contact, ContactUpsert)
    assert contact.crm_contact_id == "501"
    assert contact.properties["lists"] == ["Newsletter"]
    assert contact.occurred_at == 1795341600.0
    assert contact.dry_run is False
    assert isinstance(deleted, ContactDeleted)
    assert isinstance(request, DeletionRequested)
    assert request.source == "klicktipp"
    assert request.occurred_at == 1795341600.0  # milliseconds recognised


def test_a_numeric_crm_id_becomes_its_decimal_string() -> None:
    assert parse_message({**UPSERT, "crm_contact_id": 501}).crm_contact_id == "501"  # type: ignore[union-attr]


@pytest.mark.parametrize("message", ACCEPTED)
def test_each_accepted_case_parses(message: dict[str, object]) -> None:
    parse_message(message)


@pytest.mark.parametrize(("message", "field", "reason"), [*REJECTED, *SCHEMA_GAPS])
def test_each_rejection_names_the_field_and_the_reason(
    message: dict[str, object], field: str, reason: str
) -> None:
    # Given a message with one bad field (tests/contract_cases.py)
    # When it is parsed, Then the error names that field and why
    with pytest.raises(ContractError) as exc:
        parse_message(message)
    assert field in reasons(exc), exc.value
    assert reason in reasons(exc)[field]


def test_a_version_sent_as_a_string_is_rejected_with_a_reason_that_does_not_contradict_itself() -> None:
    # The wire stays strict (a string "1" is not the integer 1), and the reason says so
    with pytest.raises(ContractError) as exc:
        parse_message(upsert(v="1"))
    assert str(exc.value) == 'v: must be the integer 1, not the string "1"'


def test_a_whole_number_is_the_same_integer_with_or_without_a_fraction() -> None:
    # JSON has one number type (and JSON Schema's "integer" says the same): 1.0 is 1, 501.0 is 501
    message = parse_message(upsert(v=1.0, crm_contact_id=501.0))
    assert message.crm_contact_id == "501"  # type: ignore[union-attr]


def test_surrounding_whitespace_of_an_id_is_dropped() -> None:
    assert parse_message(upsert(crm_contact_id=" 501\u00a0")).crm_contact_id == "501"  # type: ignore[union-attr]


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
        ("20261122T100000Z", 1795341600.0),
        ("2026-11-22 11:00:00 +0100", 1795341600.0),
        ("2026-11-22t10:00z", 1795341600.0),
        ("2026-11-22T11+01", 1795341600.0),
        ("2026-11-22T10:00:00.052Z", 1795341600.052),
        ("2026-11-22T10:00:00,5-01:30", 1795347000.5),
        (" 1795341600000 ", 1795341600.0),
        ("1969-12-31T23:59:59Z", -1.0),
    ],
)
def test_occurred_at_accepts_iso_with_zone_seconds_and_milliseconds(value: object, expected: float) -> None:
    assert parse_timestamp(value) == expected


def test_a_deletion_request_needs_an_email_or_a_klicktipp_id() -> None:
    with pytest.raises(ContractError) as exc:
        parse_message({"v": 1, "type": "klicktipp.deletion_requested", "occurred_at": 1})
    assert "email" in reasons(exc)
