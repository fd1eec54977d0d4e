"""HubSpot: a v3 contact answer -> FetchedContact, and answers -> errors (pure functions)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ktsync.worker.crm import FetchedContact, FetchError
from ktsync.worker.crm.hubspot import (
    DAILY_LIMIT_WAIT,
    DEFAULT_PROPERTIES,
    contact_from_response,
    error_from_response,
)
from tests.crm.recorded import HUBSPOT_CONTACT


def with_properties(**changes: Any) -> dict[str, Any]:
    answer = copy.deepcopy(HUBSPOT_CONTACT)
    answer["properties"].update(changes)
    return answer


def test_a_recorded_answer_maps_to_contract_properties() -> None:
    # When the fetcher reads HubSpot's answer, asking for the default properties
    contact = contact_from_response(HUBSPOT_CONTACT, only=("email", *DEFAULT_PROPERTIES))

    # Then the e-mail is the identity, empty values are gone, the list property became a list,
    # other multi-selects stay ';'-joined, and HubSpot's unasked bookkeeping properties are dropped
    assert contact == FetchedContact(
        email="Alex.Example@Shop.Example",
        sms_number=None,
        properties={
            "city": "Berlin",
            "company": "Shop GmbH",
            "date_of_birth": "1993-12-08",
            "firstname": "Alex",
            "hs_lead_status": "OPEN",
            "lastname": "Example",
            "lead_value": "19.99",
            "lifecyclestage": "customer",
            "lists": ["Newsletter", "Webinar Herbst"],
            "phone": "+49 30 1234567",
            "website": "https://alex.example",
            "zip": "10115",
        },
    )


@pytest.mark.parametrize(
    ("changes", "list_properties", "expected"),
    [
        ({"lists": "A"}, ("lists",), {"lists": ["A"]}),
        ({"lists": " ; ;"}, ("lists",), {}),
        ({"lists": "A;B"}, (), {"lists": "A;B"}),
        ({"interests": "Tee;Kaffee"}, ("lists", "interests"), {"interests": ["Tee", "Kaffee"]}),
        ({"firstname": "  "}, (), {}),
        ({"firstname": None}, (), {}),
        ({"firstname": {"nested": 1}}, (), {}),
        ({"firstname": " Alex "}, (), {"firstname": " Alex "}),
    ],
)
def test_value_table(
    changes: dict[str, Any], list_properties: tuple[str, ...], expected: dict[str, Any]
) -> None:
    answer = {"id": "1", "properties": {"email": "a@b.example", **changes}}
    contact = contact_from_response(answer, list_properties=list_properties)
    assert contact is not None
    assert dict(contact.properties) == expected


def test_a_contact_without_email_has_none() -> None:
    contact = contact_from_response({"id": "1", "properties": {"email": "", "firstname": "A"}})
    assert contact == FetchedContact(email=None, properties={"firstname": "A"})


def test_an_archived_contact_is_no_longer_in_the_crm() -> None:
    assert contact_from_response({**HUBSPOT_CONTACT, "archived": True}) is None


@pytest.mark.parametrize("answer", [None, [], {"id": "1"}, {"properties": "x"}])
def test_an_answer_of_the_wrong_shape_is_a_retryable_error(answer: object) -> None:
    with pytest.raises(FetchError) as caught:
        contact_from_response(answer)
    assert caught.value.retryable is True


RATE = {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee", "policyName": "SECONDLY"}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "body", "retryable", "retry_after"),
    [
        (429, {"retry-after": "7"}, RATE, True, 7.0),
        (429, {"x-hubspot-ratelimit-interval-milliseconds": "10000"}, RATE, True, 10.0),
        (429, {"x-hubspot-ratelimit-secondly-remaining": "0"}, RATE, True, 1.0),
        (429, {"x-hubspot-ratelimit-daily-remaining": "0"}, RATE, True, DAILY_LIMIT_WAIT),
        (429, {}, {**RATE, "policyName": "DAILY"}, True, DAILY_LIMIT_WAIT),
        (429, {}, RATE, True, None),
        (500, {}, b"<html>bad gateway</html>", True, None),
        (503, {"retry-after": "30"}, None, True, 30.0),
        (401, {}, {"category": "INVALID_AUTHENTICATION"}, False, None),
        (403, {}, {"category": "MISSING_SCOPES"}, False, None),
        (400, {}, {"category": "VALIDATION_ERROR"}, False, None),
        (301, {"location": "https://elsewhere.example"}, None, False, None),
    ],
)
def test_error_table(
    status: int, headers: dict[str, str], body: object, retryable: bool, retry_after: float | None
) -> None:
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    error = error_from_response(status, headers, raw)
    assert (error.reason, error.retryable, error.retry_after, error.status, error.crm) == (
        "crm_fetch", retryable, retry_after, status, "hubspot",
    )  # fmt: skip


def test_a_refused_token_says_which_variable_to_check() -> None:
    error = error_from_response(401, {}, b'{"category":"INVALID_AUTHENTICATION","correlationId":"abc"}')
    assert "check HUBSPOT_ACCESS_TOKEN" in str(error)
    assert "correlationId abc" in str(error)  # what HubSpot support asks for
