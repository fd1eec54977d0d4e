"""Close: contact + lead answers -> FetchedContact, names, and answers -> errors (pure functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ktsync.worker.crm import FetchedContact, FetchError
from ktsync.worker.crm.close import contact_from_responses, error_from_response, split_name
from tests.crm.recorded import CLOSE_CONTACT, CLOSE_LEAD


def test_a_recorded_contact_and_lead_map_to_hubspot_style_properties() -> None:
    contact = contact_from_responses(CLOSE_CONTACT, CLOSE_LEAD)

    assert contact == FetchedContact(
        email="anna@home.example",  # Close's first address, whatever its type
        sms_number=None,
        properties={
            "firstname": "Anna Maria",
            "lastname": "Schmidt",
            "phone": "+49301234567",  # the first phone that is not a mobile
            "mobilephone": "+491701234567",
            "website": "https://anna.example",
            "jobtitle": "Einkauf",
            "company": "Shop GmbH",
            "hs_lead_status": "Qualified",
            "city": "Berlin",
            "zip": "10115",
            "country": "DE",
        },
    )


@pytest.mark.parametrize(
    ("contact", "lead", "expected_email", "expected"),
    [
        ({"name": "Cher"}, None, None, {"firstname": "Cher"}),
        (
            {"name": "", "emails": [{"type": "office", "email": " "}, {"email": "b@x.example"}]},
            {},
            "b@x.example",
            {},
        ),
        (
            {"urls": []},
            {"url": "https://lead.example", "addresses": []},
            None,
            {"website": "https://lead.example"},
        ),
        ({"phones": [{"type": "mobile", "phone": "+49170"}]}, None, None, {"mobilephone": "+49170"}),
        ({"phones": [{"type": "home", "phone": "+4930"}]}, None, None, {"phone": "+4930"}),
        ({"phones": "nonsense", "emails": None}, {"status_label": None}, None, {}),
    ],
)
def test_partial_records(
    contact: dict[str, Any], lead: dict[str, Any] | None, expected_email: str | None, expected: dict[str, Any]
) -> None:
    fetched = contact_from_responses(contact, lead)
    assert fetched.email == expected_email
    assert dict(fetched.properties) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Anna Schmidt", ("Anna", "Schmidt")),
        ("Anna Maria Schmidt", ("Anna Maria", "Schmidt")),
        ("Hans-Peter Müller", ("Hans-Peter", "Müller")),
        ("Ludwig van Beethoven", ("Ludwig", "van Beethoven")),
        ("Maria de la Cruz", ("Maria", "de la Cruz")),
        ("Otto von Bismarck-Schönhausen", ("Otto", "von Bismarck-Schönhausen")),
        ("Dr. Anna Schmidt", ("Anna", "Schmidt")),
        ("Prof. Dr. Anna Schmidt", ("Anna", "Schmidt")),
        ("Schmidt, Anna", ("Anna", "Schmidt")),
        ("anna schmidt", ("anna", "schmidt")),
        ("Cher", ("Cher", None)),
        ("Dr.", ("Dr.", None)),
        ("  Anna   Schmidt  ", ("Anna", "Schmidt")),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_name_split(name: str | None, expected: tuple[str | None, str | None]) -> None:
    assert split_name(name) == expected


@pytest.mark.parametrize(("contact", "lead"), [(None, None), ([], None), ({"name": "A"}, [])])
def test_answers_of_the_wrong_shape_are_retryable_errors(contact: object, lead: object) -> None:
    with pytest.raises(FetchError) as caught:
        contact_from_responses(contact, lead)
    assert caught.value.retryable is True


RATE = {"error": {"message": "API call count exceeded for this 15 second window", "rate_reset": 2.5,
                  "rate_limit": 600, "rate_window": 15}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "body", "retryable", "retry_after"),
    [
        (429, {"retry-after": "3"}, RATE, True, 3.0),
        (429, {}, RATE, True, 2.5),
        (429, {"ratelimit": "limit=20, remaining=0, reset=4"}, {"error": "slow down"}, True, 4.0),
        (429, {}, None, True, None),
        (502, {}, None, True, None),
        (401, {}, {"error": "The API key is not valid."}, False, None),
        (403, {}, {"error": "Forbidden"}, False, None),
        (400, {}, {"error": "Invalid _fields", "field-errors": {}}, False, None),
    ],
)
def test_error_table(
    status: int, headers: dict[str, str], body: object, retryable: bool, retry_after: float | None
) -> None:
    error = error_from_response(status, headers, b"" if body is None else json.dumps(body).encode())
    assert (error.retryable, error.retry_after, error.status, error.crm) == (
        retryable,
        retry_after,
        status,
        "close",
    )


def test_a_refused_key_says_which_variable_to_check() -> None:
    error = error_from_response(401, {}, b'{"error": "The API key is not valid."}')
    assert "check CLOSE_API_KEY" in str(error)
    assert "The API key is not valid." in str(error)
