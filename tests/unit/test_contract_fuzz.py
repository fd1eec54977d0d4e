"""Fuzzed events at the producer: every input is accepted or rejected with field and reason; nothing crashes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktsync.core.contract import ContractError, parse_json, parse_message
from tests.contract_cases import messages, near_valid, values

pytestmark = pytest.mark.slow  # hundreds of fuzzed examples per test: seconds


def rejection(parse: Any, value: Any) -> ContractError | None:
    """None when accepted; the ContractError when rejected (any other exception fails the test)."""
    try:
        parse(value)
    except ContractError as exc:
        return exc
    return None


def check(message: Any) -> None:
    rejected = rejection(parse_message, message)
    if rejected is not None:
        assert rejected.errors, "a rejection must name at least one field"
        assert all(error.field for error in rejected.errors)
        assert all(error.reason for error in rejected.errors)


@settings(max_examples=400, deadline=None)
@given(messages)
def test_any_message_is_accepted_or_rejected_with_field_and_reason(message: dict[str, Any]) -> None:
    check(message)


@settings(max_examples=300, deadline=None)
@given(near_valid)
def test_a_valid_message_with_one_field_changed_is_accepted_or_rejected_with_field_and_reason(
    message: dict[str, Any],
) -> None:
    check(message)


@settings(max_examples=200, deadline=None)
@given(values)
def test_any_json_value_is_accepted_or_rejected_with_field_and_reason(value: Any) -> None:
    check(value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_line_of_a_file_is_accepted_or_rejected_with_a_reason(raw: bytes | str) -> None:
    rejected = rejection(parse_json, raw)
    if rejected is not None:
        assert all(error.field for error in rejected.errors)
        assert all(error.reason for error in rejected.errors)


def test_a_valid_message_survives_a_json_round_trip() -> None:
    message = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": "1",
               "email": "a@shop.example", "occurred_at": 1795341600}  # fmt: skip
    assert parse_json(json.dumps(message)) == parse_message(message)
