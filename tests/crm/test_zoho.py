"""Zoho: a ``{"data": [record]}`` answer -> FetchedContact, versions, and answers -> errors (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ktsync.worker.crm import CrmConfigError, FetchedContact, FetchError
from ktsync.worker.crm.zoho import contact_from_response, error_from_response, parse_version
from tests.crm.recorded import ZOHO_CONTACT


def test_a_recorded_answer_maps_to_hubspot_style_properties() -> None:
    assert contact_from_response(ZOHO_CONTACT) == FetchedContact(
        email="kris@zylker.example",
        sms_number=None,
        properties={
            "firstname": "Kris",
            "lastname": "Marrier",
            "phone": "555-555-5555",
            "city": "Frankfurt",
            "zip": "60311",
            "country": "Germany",
            "date_of_birth": "1990-05-14",
            "company": "Zylker",
            "lead_source": "Trade Show",
        },
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"Account_Name": None}, {}),
        ({"Account_Name": {"id": "1"}}, {}),
        ({"Lead_Source": ["Web", " ", "Fair"]}, {"lead_source": ["Web", "Fair"]}),
        ({"Title": 7}, {"jobtitle": 7}),
        ({"Title": ["", " "]}, {}),
        ({"Unmapped_Field": "x"}, {}),
    ],
)
def test_value_table(record: dict[str, Any], expected: dict[str, Any]) -> None:
    contact = contact_from_response({"data": [{"id": "1", **record}]})
    assert contact is not None
    assert dict(contact.properties) == expected


def test_an_empty_data_list_is_no_longer_in_the_crm() -> None:
    assert contact_from_response({"data": []}) is None


@pytest.mark.parametrize("answer", [None, {}, {"data": "x"}, {"data": ["x"]}])
def test_an_answer_of_the_wrong_shape_is_a_retryable_error(answer: object) -> None:
    with pytest.raises(FetchError) as caught:
        contact_from_response(answer)
    assert caught.value.retryable is True


@pytest.mark.parametrize(("value", "expected"), [("7", "7"), ("v7", "7"), ("V8", "8"), (" 2.1 ", "2.1")])
def test_versions(value: str, expected: str) -> None:
    assert parse_version(value) == expected


@pytest.mark.parametrize("value", ["", "seven", "v", "7/../../x"])
def test_bad_versions_name_the_variable(value: str) -> None:
    with pytest.raises(CrmConfigError, match="ZOHO_API_VERSION"):
        parse_version(value)


@pytest.mark.parametrize(
    ("status", "headers", "body", "retryable", "retry_after"),
    [
        (429, {"retry-after": "60"}, {"code": "TOO_MANY_REQUESTS"}, True, 60.0),
        (429, {}, {"code": "TOO_MANY_REQUESTS"}, True, None),
        (500, {}, {"code": "INTERNAL_ERROR"}, True, None),
        (401, {}, {"code": "INVALID_TOKEN", "message": "invalid oauth token"}, False, None),
        (403, {}, {"code": "OAUTH_SCOPE_MISMATCH"}, False, None),
        (400, {}, {"code": "INVALID_URL_PATTERN"}, False, None),
    ],
)
def test_error_table(
    status: int, headers: dict[str, str], body: object, retryable: bool, retry_after: float | None
) -> None:
    error = error_from_response(status, headers, json.dumps(body).encode())
    assert (error.retryable, error.retry_after, error.status, error.crm) == (
        retryable,
        retry_after,
        status,
        "zoho",
    )


def test_an_expired_token_says_which_variable_to_check_and_why() -> None:
    error = error_from_response(
        401, {}, b'{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token"}'
    )
    assert "INVALID_TOKEN" in str(error)
    assert "check ZOHO_ACCESS_TOKEN" in str(error)
    assert "does not refresh" in str(error)
