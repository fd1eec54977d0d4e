"""Every operation's success and documented error responses, validated against KlickTipp's OpenAPI spec.

Each case drives the real fake over loopback, then validates the request/response pair with
openapi-core (``V30RequestValidator`` / ``V30ResponseValidator``, documented response properties
required). Paths are validated relative to ``https://api.klicktipp.com``, the spec's production server.
The spec is vendored next to this file (``management-api.openapi.json``, spec date 2026-06-04).

A completeness test checks that every (operation, documented status) pair is either exercised here
or listed in ``NOT_PROVOKED`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from openapi_core import Config, OpenAPI, V30RequestValidator, V30ResponseValidator
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.exceptions import OpenAPIError

from fake_klicktipp.testing import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DOUBLE_OPT_IN_LIST_ID,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    LIFECYCLE_LEAD_TAG_ID,
    SINGLE_OPT_IN_LIST_ID,
    SMART_TAG_ID,
    UNSUBSCRIBED_CONTACT_ID,
    UNSUBSCRIBED_EMAIL,
    WEBINAR_TAG_ID,
    partner_headers,
)
from tests.spec import SPEC_PATH

from .conftest import Api

SPEC_SERVER = "https://api.klicktipp.com"
LOGIN = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
FILTERS = {"status": ["subscribed", "unsubscribed"], "bounceStatus": ["nobounce"]}

# Documented statuses the fake cannot be made to answer, and why.
NOT_PROVOKED = {
    ("api.tag.delete", 406): "nothing refuses deleting an existing manual tag; SmartTags answer 404",
}


@dataclass(frozen=True)
class Case:
    """One request against the fake; ``auth`` is "partner", "session" (log in first) or "none"."""

    operation: str
    status: int
    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    auth: str = "partner"
    setup: Callable[[Api], object] | None = None
    request_is_valid: bool = True  # False: the case sends a deliberately malformed request

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.status}-{self.method} {self.path}"


def _pending_contact(api: Api) -> object:
    return api.post("/subscriber", json={"email": "pending@shop.example", "listid": DOUBLE_OPT_IN_LIST_ID})


def _denied(operation: str, method: str, path: str, **kwargs: Any) -> Case:
    return Case(operation, 403, method, path, kwargs, auth="none")


SUBSCRIBER = f"/subscriber/{EXISTING_CONTACT_ID}"

CASES = [
    # authentication
    Case("api.account.login", 200, "POST", "/account/login", {"json": LOGIN}, auth="none"),
    Case("api.account.login", 200, "POST", "/account/login", {"data": LOGIN}, auth="none"),
    Case(
        "api.account.login",
        400,
        "POST",
        "/account/login",
        {"json": {"username": 1, "password": "x"}},
        "none",
        request_is_valid=False,
    ),
    Case(
        "api.account.login", 401, "POST", "/account/login", {"json": {**LOGIN, "password": "wrong"}}, "none"
    ),
    Case("api.account.login", 406, "POST", "/account/login", {"json": LOGIN}, auth="session"),
    Case("api.account.logout", 200, "POST", "/account/logout", auth="session"),
    # data fields
    Case("api.customfield.index", 200, "GET", "/field"),
    _denied("api.customfield.index", "GET", "/field"),
    Case("api.customfield.retrieve", 200, "GET", "/field/FirstName"),
    Case("api.customfield.retrieve", 200, "GET", "/field/100001"),
    _denied("api.customfield.retrieve", "GET", "/field/FirstName"),
    Case("api.customfield.retrieve", 404, "GET", "/field/Nope"),
    # opt-in processes
    Case("api.optin.index", 200, "GET", "/list"),
    _denied("api.optin.index", "GET", "/list"),
    Case("api.optin.retrieve", 200, "GET", f"/list/{SINGLE_OPT_IN_LIST_ID}"),
    _denied("api.optin.retrieve", "GET", f"/list/{SINGLE_OPT_IN_LIST_ID}"),
    Case("api.optin.retrieve", 404, "GET", "/list/999"),
    Case(
        "api.optin.redirect",
        200,
        "POST",
        "/list/redirect",
        {"json": {"listid": "23", "email": EXISTING_EMAIL}},
    ),
    _denied("api.optin.redirect", "POST", "/list/redirect", json={"listid": "23", "email": EXISTING_EMAIL}),
    Case(
        "api.optin.redirect",
        404,
        "POST",
        "/list/redirect",
        {"json": {"listid": "999", "email": EXISTING_EMAIL}},
    ),
    # contacts
    Case("api.subscriber.index", 200, "GET", "/subscriber"),
    Case(
        "api.subscriber.index", 200, "GET", "/subscriber", {"params": {"status": "subscribed,unsubscribed"}}
    ),
    _denied("api.subscriber.index", "GET", "/subscriber"),
    Case("api.subscriber.index", 404, "GET", "/subscriber", {"params": {"status": "pending"}}),
    Case(
        "api.subscriber.create",
        200,
        "POST",
        "/subscriber",
        {
            "json": {
                "email": "new@shop.example",
                "listid": SINGLE_OPT_IN_LIST_ID,
                "tagid": WEBINAR_TAG_ID,
                "smsnumber": "+491701234567",
                "fields": {"fieldFirstName": "Alex", "fieldLeadValue": "1999", "fieldBirthday": "755222400"},
            }
        },
    ),
    Case(
        "api.subscriber.create",
        200,
        "POST",
        "/subscriber",
        {"data": {"email": "form@shop.example", "listid": "24", "fields[fieldCity]": "Berlin"}},
    ),
    Case("api.subscriber.create", 200, "POST", "/subscriber", {"json": {"email": EXISTING_EMAIL}}),
    _denied("api.subscriber.create", "POST", "/subscriber", json={"email": "new@shop.example"}),
    Case("api.subscriber.create", 406, "POST", "/subscriber", {"json": {"email": UNSUBSCRIBED_EMAIL}}),
    Case(
        "api.subscriber.create",
        406,
        "POST",
        "/subscriber",
        {"json": {"email": "bad@shop.example", "fields": {"fieldWebsite": "shop.example"}}},
    ),
    Case("api.subscriber.create", 406, "POST", "/subscriber", {"json": {"listid": SINGLE_OPT_IN_LIST_ID}}),
    Case("api.subscriber.retrieve", 200, "GET", SUBSCRIBER),
    Case("api.subscriber.retrieve", 200, "GET", f"/subscriber/{UNSUBSCRIBED_CONTACT_ID}"),
    _denied("api.subscriber.retrieve", "GET", SUBSCRIBER),
    Case("api.subscriber.retrieve", 404, "GET", "/subscriber/424242"),
    Case(
        "api.subscriber.update",
        200,
        "PUT",
        SUBSCRIBER,
        {
            "json": {
                "newemail": "moved@shop.example",
                "newsmsnumber": "004915111111111",
                "fields": {"field100002": "42", "field100004": "52200"},
            }
        },
    ),
    _denied("api.subscriber.update", "PUT", SUBSCRIBER, json={"newemail": "moved@shop.example"}),
    Case("api.subscriber.update", 406, "PUT", SUBSCRIBER, {"json": {"newemail": UNSUBSCRIBED_EMAIL}}),
    Case("api.subscriber.update", 406, "PUT", "/subscriber/424242", {"json": {"newemail": "x@shop.example"}}),
    Case("api.subscriber.delete", 200, "DELETE", SUBSCRIBER),
    _denied("api.subscriber.delete", "DELETE", SUBSCRIBER),
    Case("api.subscriber.delete", 406, "DELETE", "/subscriber/424242"),
    Case(
        "api.subscriber.unsubscribe",
        200,
        "POST",
        "/subscriber/unsubscribe",
        {"json": {"email": EXISTING_EMAIL}},
    ),
    _denied("api.subscriber.unsubscribe", "POST", "/subscriber/unsubscribe", json={"email": EXISTING_EMAIL}),
    Case(
        "api.subscriber.unsubscribe",
        406,
        "POST",
        "/subscriber/unsubscribe",
        {"json": {"email": "pending@shop.example"}},
        setup=_pending_contact,
    ),
    Case(
        "api.subscriber.tag",
        200,
        "POST",
        "/subscriber/tag",
        {"json": {"email": EXISTING_EMAIL, "tagids": [LIFECYCLE_LEAD_TAG_ID, WEBINAR_TAG_ID]}},
    ),
    _denied("api.subscriber.tag", "POST", "/subscriber/tag", json={"email": EXISTING_EMAIL, "tagids": [11]}),
    Case(
        "api.subscriber.tag",
        406,
        "POST",
        "/subscriber/tag",
        {"json": {"email": "nobody@shop.example", "tagids": [11]}},
    ),
    Case(
        "api.subscriber.untag",
        200,
        "POST",
        "/subscriber/untag",
        {"json": {"email": EXISTING_EMAIL, "tagid": 10}},
    ),
    _denied("api.subscriber.untag", "POST", "/subscriber/untag", json={"email": EXISTING_EMAIL, "tagid": 10}),
    Case(
        "api.subscriber.untag",
        406,
        "POST",
        "/subscriber/untag",
        {"json": {"email": EXISTING_EMAIL, "tagid": SMART_TAG_ID}},
    ),
    Case("api.subscriber.search", 200, "POST", "/subscriber/search", {"json": {"email": EXISTING_EMAIL}}),
    _denied("api.subscriber.search", "POST", "/subscriber/search", json={"email": EXISTING_EMAIL}),
    Case(
        "api.subscriber.search", 404, "POST", "/subscriber/search", {"json": {"email": "nobody@shop.example"}}
    ),
    Case("api.subscriber.tagged", 200, "POST", "/subscriber/tagged", {"json": {"tagid": 10, **FILTERS}}),
    Case(
        "api.subscriber.tagged",
        200,
        "POST",
        "/subscriber/tagged",
        {"json": {"tagid": SMART_TAG_ID, **FILTERS}},
    ),
    _denied("api.subscriber.tagged", "POST", "/subscriber/tagged", json={"tagid": 10, **FILTERS}),
    # tags
    Case("api.tag.index", 200, "GET", "/tag"),
    _denied("api.tag.index", "GET", "/tag"),
    Case("api.tag.create", 200, "POST", "/tag", {"json": {"name": "[CRM] [Segment] vip", "text": "VIPs"}}),
    Case("api.tag.create", 200, "POST", "/tag", {"data": {"name": "form-made"}}),
    _denied("api.tag.create", "POST", "/tag", json={"name": "x"}),
    Case("api.tag.create", 406, "POST", "/tag", {"json": {"name": "Webinar 2026"}}),
    Case("api.tag.retrieve", 200, "GET", f"/tag/{WEBINAR_TAG_ID}"),
    _denied("api.tag.retrieve", "GET", f"/tag/{WEBINAR_TAG_ID}"),
    Case("api.tag.retrieve", 404, "GET", "/tag/999"),
    Case(
        "api.tag.update",
        200,
        "PUT",
        f"/tag/{WEBINAR_TAG_ID}",
        {"json": {"name": "Webinar 2027", "text": "t"}},
    ),
    _denied("api.tag.update", "PUT", f"/tag/{WEBINAR_TAG_ID}", json={"name": "x"}),
    Case("api.tag.update", 404, "PUT", "/tag/999", {"json": {"name": "x"}}),
    Case(
        "api.tag.update",
        406,
        "PUT",
        f"/tag/{WEBINAR_TAG_ID}",
        {"json": {"name": "[CRM] [Lifecycle Stage] lead"}},
    ),
    Case("api.tag.delete", 200, "DELETE", f"/tag/{WEBINAR_TAG_ID}"),
    _denied("api.tag.delete", "DELETE", f"/tag/{WEBINAR_TAG_ID}"),
    Case("api.tag.delete", 404, "DELETE", "/tag/999"),
]


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    config = Config(
        request_validator_cls=V30RequestValidator,
        response_validator_cls=V30ResponseValidator,
        response_properties_default_policy="required",
    )
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


def _client(base_url: str, auth: str) -> Api:
    client = Api(base_url, partner_headers() if auth == "partner" else None)
    if auth == "session":
        assert client.post("/account/login", json=LOGIN).status_code == 200
    return client


def _as_spec_request(response: requests.Response) -> RequestsOpenAPIRequest:
    """The request that was sent, re-addressed to the spec's production server."""
    prepared = response.request.copy()
    assert prepared.url is not None
    local = urlsplit(prepared.url)
    prepared.url = urlunsplit((*urlsplit(SPEC_SERVER)[:2], local.path, local.query, ""))
    return RequestsOpenAPIRequest(prepared)


def validate_exchange(
    openapi: OpenAPI, response: requests.Response, *, request_is_valid: bool = True
) -> None:
    """Validate the request (unless deliberately malformed) and the response against the spec."""
    request = _as_spec_request(response)
    if request_is_valid:
        openapi.validate_request(request)
    openapi.validate_response(request, RequestsOpenAPIResponse(response))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_exchange_conforms_to_the_spec(case, openapi, fake_server, control):
    client = _client(fake_server.base_url, case.auth)
    if case.setup is not None:
        case.setup(_client(fake_server.base_url, "partner"))
    response = client(case.method, case.path, **case.kwargs)
    assert response.status_code == case.status, response.text
    validate_exchange(openapi, response, request_is_valid=case.request_is_valid)
    assert control.requests()[-1]["operation"] == case.operation


def test_every_documented_status_is_exercised():
    spec = json.loads(SPEC_PATH.read_text())
    documented = {
        (operation["operationId"], int(status))
        for path in spec["paths"].values()
        for operation in path.values()
        for status in operation["responses"]
    }
    exercised = {(case.operation, case.status) for case in CASES}
    assert documented - exercised == set(NOT_PROVOKED)
    assert exercised <= documented


@dataclass(frozen=True)
class Deviation:
    """A behaviour the fake keeps although the spec does not document it (see KLICKTIPP_API.md)."""

    why: str
    method: str
    path: str
    status: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    auth: str = "partner"
    options: dict[str, Any] = field(default_factory=dict)


DEVIATIONS = [
    Deviation(
        "recorded: logout without a session is 406; the spec lists only 200",
        "POST",
        "/account/logout",
        406,
        auth="none",
    ),
    Deviation(
        "recorded Drupal style: a missing argument is 401; tagged lists only 200/403",
        "POST",
        "/subscriber/tagged",
        401,
        {"json": {"status": ["subscribed"], "bounceStatus": ["nobounce"]}},
    ),
    Deviation(
        "an unparseable body is 406 (n8n history); search lists no 406",
        "POST",
        "/subscriber/search",
        406,
        {"data": b"{oops", "headers": {"Content-Type": "application/json"}},
    ),
    Deviation(
        "the recorded plain-array index (option index_shape=array); the spec says {subscribers: []}",
        "GET",
        "/subscriber",
        200,
        options={"index_shape": "array"},
    ),
    Deviation(
        "recorded null sms_* keys (option sms_null_when_absent); the spec says required strings",
        "GET",
        SUBSCRIBER,
        200,
        options={"sms_null_when_absent": True},
    ),
    Deviation(
        "the recorded profile's subscriber object has no tags, manual_tags or smart_tags",
        "GET",
        SUBSCRIBER,
        200,
        options={"profile": "recorded", "sms_null_when_absent": False},
    ),
    Deviation(
        "the recorded profile's search miss is raw text, not JSON",
        "POST",
        "/subscriber/search",
        404,
        {"json": {"email": "nobody@shop.example"}},
        options={"profile": "recorded"},
    ),
    Deviation(
        "the recorded profile's subscribe without email is 401 {error: 32}; the spec says 406",
        "POST",
        "/subscriber",
        401,
        {"json": {"listid": SINGLE_OPT_IN_LIST_ID}},
        options={"profile": "recorded"},
    ),
]


@pytest.mark.parametrize("deviation", DEVIATIONS, ids=lambda d: d.why)
def test_known_deviations_are_flagged_by_the_validator(deviation, openapi, fake_server, control):
    """Each deviation is deliberate: the fake answers it and openapi-core rejects it (so it stays visible)."""
    if deviation.options:
        control.options(**deviation.options)
    response = _client(fake_server.base_url, deviation.auth)(
        deviation.method, deviation.path, **deviation.kwargs
    )
    assert response.status_code == deviation.status
    with pytest.raises(OpenAPIError):
        validate_exchange(openapi, response, request_is_valid=False)
