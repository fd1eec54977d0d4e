"""The recorded profile over loopback: the bodies of KLICKTIPP_API.md §11, byte for byte.

Each test switches the session's server to the recorded profile (the ``control`` fixture's reset
returns it to the documented start-up profile). JSON bodies are compact, as PHP's ``json_encode``
writes them; raw bodies are not JSON at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fake_klicktipp.options import Options, options_json
from fake_klicktipp.seed import default_seed
from fake_klicktipp.testing import (
    DOUBLE_OPT_IN_LIST_ID,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    SINGLE_OPT_IN_LIST_ID,
    UNSUBSCRIBED_EMAIL,
    WEBINAR_TAG_ID,
    partner_headers,
    running_fake,
)

from .conftest import Api

SUBSCRIBER = f"/subscriber/{EXISTING_CONTACT_ID}"
NOBODY = "nobody@shop.example"
PENDING = "pending@shop.example"
NO_IP = "0.0.0.0"  # noqa: S104 - an address in a body, not one to bind
MISSING_EMAIL = b"[Missing required argument email]"
NO_TAG = b'["Kein Tag mit dieser ID."]'
NO_LIST = b'["Kein Opt-In-Prozess mit dieser ID."]'
ERROR_7 = b'{"error":7}'
WRONG_METHOD = (
    rb'"No route found for \"DELETE https:\/\/api-internal.klicktipp.com\/api\/tag.json\":'
    rb' Method Not Allowed (Allow: GET, POST)"'
)


def _pending_contact(api: Api) -> object:
    return api.post("/subscriber", json={"email": PENDING, "listid": DOUBLE_OPT_IN_LIST_ID})


@dataclass(frozen=True)
class Exchange:
    """One request and the exact status and body bytes it must get."""

    name: str
    method: str
    path: str
    status: int
    body: bytes
    kwargs: dict[str, Any] = field(default_factory=dict)
    signed_in: bool = True
    setup: Callable[[Api], object] | None = None


RECORDED = [
    Exchange("no session", "GET", "/tag", 403, b'["API Zugriff verweigert"]', signed_in=False),
    Exchange(
        "no session on a contact route",
        "POST",
        "/subscriber/search",
        403,
        b'["API Zugriff verweigert"]',
        {"json": {"email": EXISTING_EMAIL}},
        signed_in=False,
    ),
    Exchange("index: a plain id array", "GET", "/subscriber", 200, f'["{EXISTING_CONTACT_ID}"]'.encode()),
    Exchange(
        "index without a match",
        "GET",
        "/subscriber",
        404,
        b'["Es existieren keine Kontakte."]',
        {"params": {"status": "pending"}},
    ),
    Exchange("retrieve an unknown id: empty", "GET", "/subscriber/424242", 404, b""),
    Exchange(
        "subscribe without email or SMS number",
        "POST",
        "/subscriber",
        401,
        b'{"error":32}',
        {"json": {"listid": SINGLE_OPT_IN_LIST_ID}},
    ),
    Exchange(
        "re-subscribe an unsubscribed email",
        "POST",
        "/subscriber",
        406,
        b'["Error 4"]',
        {"json": {"email": UNSUBSCRIBED_EMAIL}},
    ),
    Exchange(
        "search miss: raw text",
        "POST",
        "/subscriber/search",
        404,
        b"[Diesen Kontakt gibt es nicht.]",
        {"json": {"email": NOBODY}},
    ),
    Exchange(
        "unsubscribe without email", "POST", "/subscriber/unsubscribe", 401, MISSING_EMAIL, {"json": {}}
    ),
    Exchange(
        "tag without email",
        "POST",
        "/subscriber/tag",
        401,
        MISSING_EMAIL,
        {"json": {"tagids": [WEBINAR_TAG_ID]}},
    ),
    Exchange(
        "untag without email",
        "POST",
        "/subscriber/untag",
        401,
        MISSING_EMAIL,
        {"json": {"tagid": WEBINAR_TAG_ID}},
    ),
    Exchange(
        "tagged without tagid",
        "POST",
        "/subscriber/tagged",
        401,
        b"[Missing required argument tagid]",
        {"json": {}},
    ),
    Exchange(
        "tag an unknown email",
        "POST",
        "/subscriber/tag",
        406,
        ERROR_7,
        {"json": {"email": NOBODY, "tagids": [WEBINAR_TAG_ID]}},
    ),
    Exchange(
        "tag with an unknown tag",
        "POST",
        "/subscriber/tag",
        406,
        ERROR_7,
        {"json": {"email": EXISTING_EMAIL, "tagids": [999]}},
    ),
    Exchange(
        "untag an unknown email",
        "POST",
        "/subscriber/untag",
        406,
        ERROR_7,
        {"json": {"email": NOBODY, "tagid": WEBINAR_TAG_ID}},
    ),
    Exchange(
        "untag an unknown tag",
        "POST",
        "/subscriber/untag",
        406,
        ERROR_7,
        {"json": {"email": EXISTING_EMAIL, "tagid": 999}},
    ),
    Exchange(
        "unsubscribe an unknown email",
        "POST",
        "/subscriber/unsubscribe",
        406,
        ERROR_7,
        {"json": {"email": NOBODY}},
    ),
    Exchange(
        "unsubscribe a pending contact",
        "POST",
        "/subscriber/unsubscribe",
        406,
        b'{"error":9}',
        {"json": {"email": PENDING}},
        setup=_pending_contact,
    ),
    Exchange(
        "update an unknown contact",
        "PUT",
        "/subscriber/424242",
        406,
        b'["Der Kontakt existiert nicht."]',
        {"json": {"newemail": "x@shop.example"}},
    ),
    Exchange(
        "update with an invalid field value",
        "PUT",
        SUBSCRIBER,
        406,
        ERROR_7,
        {"json": {"fields": {"fieldWebsite": "no-scheme"}}},
    ),
    Exchange("wrong method", "DELETE", "/tag", 405, WRONG_METHOD),
    Exchange("wrong method, /api and .json", "DELETE", "/api/tag.json", 405, WRONG_METHOD),
    Exchange("retrieve an unknown tag", "GET", "/tag/999", 404, NO_TAG),
    Exchange("update an unknown tag", "PUT", "/tag/999", 404, NO_TAG, {"json": {"name": "x"}}),
    Exchange("delete an unknown tag", "DELETE", "/tag/999", 404, NO_TAG),
    Exchange("retrieve an unknown list", "GET", "/list/999", 404, NO_LIST),
    Exchange(
        "redirect on an unknown list",
        "POST",
        "/list/redirect",
        404,
        NO_LIST,
        {"json": {"listid": 999, "email": EXISTING_EMAIL}},
    ),
    Exchange("retrieve an unknown field", "GET", "/field/Nope", 404, b'["Kein Field mit dieser ID."]'),
    Exchange("delete an unknown field", "DELETE", "/field/Nope", 404, b'["Kein Field mit dieser ID."]'),
]

# The same requests where the documented profile answers differently (KlickTipp's spec).
DOCUMENTED = [
    Exchange("no session", "GET", "/tag", 403, b'["API access denied."]', signed_in=False),
    Exchange("index", "GET", "/subscriber", 200, f'{{"subscribers":["{EXISTING_CONTACT_ID}"]}}'.encode()),
    Exchange("retrieve an unknown id", "GET", "/subscriber/424242", 404, b'["There is no such entity."]'),
    Exchange(
        "subscribe without email or SMS number",
        "POST",
        "/subscriber",
        406,
        b'{"error":32}',
        {"json": {"listid": SINGLE_OPT_IN_LIST_ID}},
    ),
    Exchange(
        "re-subscribe an unsubscribed email",
        "POST",
        "/subscriber",
        406,
        b'{"error":10,"code":4}',
        {"json": {"email": UNSUBSCRIBED_EMAIL}},
    ),
    Exchange(
        "search miss",
        "POST",
        "/subscriber/search",
        404,
        b'["There is no such entity."]',
        {"json": {"email": NOBODY}},
    ),
    Exchange(
        "unsubscribe without email",
        "POST",
        "/subscriber/unsubscribe",
        401,
        b'["Missing required argument email"]',
        {"json": {}},
    ),
    Exchange(
        "tag with an unknown tag",
        "POST",
        "/subscriber/tag",
        406,
        b'{"error":403}',
        {"json": {"email": EXISTING_EMAIL, "tagids": [999]}},
    ),
    Exchange(
        "untag an unknown tag",
        "POST",
        "/subscriber/untag",
        406,
        b'{"error":403}',
        {"json": {"email": EXISTING_EMAIL, "tagid": 999}},
    ),
    Exchange("wrong method: the same bare string", "DELETE", "/tag", 405, WRONG_METHOD),
    Exchange("retrieve an unknown tag", "GET", "/tag/999", 404, b'["There is no such entity."]'),
]


@pytest.fixture
def recorded(control):
    """The session's server switched to the recorded profile (until the next test's reset)."""
    control.use_profile("recorded")
    return control


def _exchange(fake_server, case: Exchange):
    client = Api(fake_server.base_url, partner_headers() if case.signed_in else None)
    if case.setup is not None:
        case.setup(Api(fake_server.base_url, partner_headers()))
    return client(case.method, case.path, **case.kwargs)


@pytest.mark.parametrize("case", RECORDED, ids=lambda case: case.name)
def test_the_recorded_profile_answers_the_recorded_bytes(case, fake_server, recorded):
    response = _exchange(fake_server, case)
    assert (response.status_code, response.content) == (case.status, case.body)
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("case", DOCUMENTED, ids=lambda case: case.name)
def test_the_documented_profile_keeps_the_spec_answers(case, fake_server, control):
    response = _exchange(fake_server, case)
    assert (response.status_code, response.content) == (case.status, case.body)


def test_a_wrong_method_names_the_allowed_ones(api):
    response = api.post(f"/subscriber/{EXISTING_CONTACT_ID}")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT, DELETE"
    assert response.json() == (
        f'No route found for "POST https://api-internal.klicktipp.com/api/subscriber/{EXISTING_CONTACT_ID}.json":'
        " Method Not Allowed (Allow: GET, PUT, DELETE)"
    )


# -- the subscriber object ------------------------------------------------------------------------------
def _recorded_object(created: dict[str, Any], custom_fields: list[str]) -> dict[str, Any]:
    """The §11 object for a new pending contact without SMS number, its ids and date taken from ``created``."""
    globals_ = [
        "fieldFirstName", "fieldLastName", "fieldCompanyName", "fieldStreet1", "fieldStreet2", "fieldCity",
        "fieldState", "fieldZip", "fieldCountry", "fieldPrivatePhone", "fieldMobilePhone", "fieldPhone",
        "fieldFax", "fieldWebsite", "fieldBirthday", "fieldLeadValue",
    ]  # fmt: skip
    maps = [
        "notification_emails_sent", "notification_emails_opened", "notification_emails_clicked",
        "emails_sent", "emails_opened", "emails_clicked", "campaigns_started", "campaigns_finished",
    ]  # fmt: skip
    return {
        "id": created["id"],
        "listid": str(DOUBLE_OPT_IN_LIST_ID),
        "optin": created["optin"],
        "optin_ip": "0.0.0.0 - By API Request",
        "email": PENDING,
        "status": "Opt-In Pending",
        "bounce": "Not Bounced",
        "date": "",
        "ip": "0.0.0.0 - By API Request",
        "unsubscription": "",
        "unsubscription_ip": NO_IP,
        "referrer": "",
        "sms_phone": None,
        "sms_status": None,
        "sms_bounce": None,
        "sms_date": "",
        "sms_unsubscription": "",
        "sms_referrer": None,
        **dict.fromkeys(globals_ + custom_fields, ""),
        **{key: {} for key in maps},
    }


def test_the_recorded_subscriber_object(api, recorded):
    created = api.post("/subscriber", json={"email": PENDING, "listid": DOUBLE_OPT_IN_LIST_ID})
    custom = [key for key in api.get("/field").json() if key[5:].isdigit()]
    expected = json.dumps(_recorded_object(created.json(), custom), separators=(",", ":")).encode()
    assert created.content == expected
    assert api.get(f"/subscriber/{created.json()['id']}").content == expected


def test_the_recorded_object_keeps_sms_values_and_omits_the_tag_maps(api, recorded):
    body = api.post("/subscriber", json={"email": PENDING, "smsnumber": "+491701234567"}).json()
    assert (body["sms_phone"], body["sms_status"], body["sms_referrer"]) == (
        "00491701234567",
        "Subscribed",
        "",
    )
    existing = api.get(SUBSCRIBER).json()
    assert {"tags", "manual_tags", "smart_tags"}.isdisjoint(existing)
    assert existing["ip"] == "0.0.0.0 - By API Request"


def test_the_documented_object_of_a_pending_contact(api, control):
    body = api.post("/subscriber", json={"email": PENDING, "listid": DOUBLE_OPT_IN_LIST_ID}).json()
    assert (body["ip"], body["sms_phone"], body["sms_referrer"], body["tags"]) == (NO_IP, "", None, [])


# -- injected faults -----------------------------------------------------------------------------------
@pytest.mark.parametrize("faults", [{"error_rate": 1.0, "error_status": 500}, {"outage_seconds": 60}])
def test_recorded_server_errors_have_an_empty_body(api, recorded, faults):
    recorded.faults(**faults)
    response = api.get("/tag")
    assert response.status_code >= 500
    assert response.content == b""


def test_documented_server_errors_and_recorded_429s_keep_their_message(api, control):
    control.faults(outage_seconds=60)
    assert api.get("/tag").json() == ["Service Unavailable"]
    control.faults(outage_seconds=0, rate_limit={"per_second": 0.01, "burst": 1})
    control.use_profile("recorded")
    api.get("/tag")
    limited = api.get("/tag")
    assert (limited.status_code, limited.json()) == (429, ["Too Many Requests"])


# -- switching profiles ----------------------------------------------------------------------------------
def _switches(options: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if name != "request_log_limit"}


def test_a_profile_is_a_preset_that_single_options_override(api, control):
    options = control.use_profile("recorded", german=False)
    assert (options["profile"], options["german"], options["raw_search_miss"]) == ("recorded", False, True)
    missing = api.post("/subscriber/search", json={"email": NOBODY})
    assert missing.content == b"[There is no such entity.]"
    control.options(raw_search_miss=False, german=True)
    assert api.post("/subscriber/search", json={"email": NOBODY}).json() == ["Diesen Kontakt gibt es nicht."]
    assert control.state()["options"]["profile"] == "recorded"


def test_documented_restores_every_default_but_the_log_limit(control):
    control.options(request_log_limit=50, auth_failure_status=401)
    control.use_profile("recorded")
    options = control.use_profile("documented")
    assert _switches(options) == _switches(options_json(Options()))
    assert options["request_log_limit"] == 50


def test_a_reset_returns_to_the_start_up_profile(api, control):
    control.use_profile("recorded")
    control.reset()
    assert control.options()["profile"] == "documented"
    assert api.get("/subscriber/424242").json() == ["There is no such entity."]


def test_a_seed_may_name_a_profile(fake_server, control):
    control.reset(default_seed() | {"options": {"profile": "recorded", "german": False}})
    options = Api(fake_server.base_url).get("/_fake/options").json()
    assert (options["profile"], options["german"], options["index_shape"]) == ("recorded", False, "array")


def test_an_unknown_profile_is_refused(fake_server, control):
    response = Api(fake_server.base_url).post("/_fake/options", json={"profile": "real"})
    assert response.status_code == 400
    assert "profile" in response.json()["error"]


def test_the_start_up_profile_from_the_command_line():
    with running_fake(profile="recorded") as fake:
        api = Api(fake.base_url, partner_headers())
        assert fake.control.options()["profile"] == "recorded"
        assert api.get("/subscriber/424242").content == b""
        fake.control.use_profile("documented")
        assert api.get("/subscriber/424242").json() == ["There is no such entity."]
        fake.control.reset()
        assert fake.control.state()["options"]["profile"] == "recorded"
        assert Api(fake.base_url).get("/tag").content == b'["API Zugriff verweigert"]'
