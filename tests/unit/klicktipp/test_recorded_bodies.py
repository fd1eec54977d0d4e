"""Every recorded body of KLICKTIPP_API.md §11 through the client's classifier and parsers.

The bodies are written here as the document shows them, and the document is read too: a body that
is not in §11 any more, or a recording in §11 that no case here covers, fails the suite, so the
client follows the evidence as it grows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import responses

from ktsync.worker.klicktipp import (
    AuthError,
    BadRequest,
    ContactNotFound,
    ContactOrTagNotFound,
    KlickTippClient,
    KlickTippError,
    MethodNotAllowed,
    NotFound,
    NotSubscribedError,
    PartnerAuth,
    ReferenceNotFound,
    Rejected,
    ServerError,
    SubscriptionNotFound,
    SubscriptionStatus,
    ValidationError,
    error_from_response,
)
from ktsync.worker.klicktipp import parsing as p
from tests.spec import API_DOC_PATH
from tests.unit.klicktipp.conftest import BASE, CUSTOMER_KEY, DEVELOPER_KEY, USERNAME

SECTION = "## 11. Recorded response bodies"
GLOBAL_FIELDS = tuple(
    f"field{name}"
    for name in ("FirstName", "LastName", "CompanyName", "Street1", "Street2", "City", "State", "Zip",
                 "Country", "PrivatePhone", "MobilePhone", "Phone", "Fax", "Website", "Birthday", "LeadValue")
)  # fmt: skip
CREATE, GET, INDEX, SEARCH = (
    "api.subscriber.create", "api.subscriber.retrieve", "api.subscriber.index", "api.subscriber.search"
)  # fmt: skip
TAG, UNTAG, UNSUBSCRIBE, TAGGED = (
    "api.subscriber.tag", "api.subscriber.untag", "api.subscriber.unsubscribe", "api.subscriber.tagged"
)  # fmt: skip


def section() -> str:
    text = API_DOC_PATH.read_text(encoding="utf-8")
    assert SECTION in text, f"{API_DOC_PATH} has no section {SECTION!r}"
    return text[text.index(SECTION) :]


def recorded_snippets() -> set[str]:
    """The bodies in the Body column of §11's table (backticked, JSON-ish or ``''``)."""
    found: set[str] = set()
    for line in section().splitlines():
        cells = line.split(" | ")
        if not line.startswith("|") or len(cells) < 3 or set(line) <= {"|", "-", " "}:
            continue
        body_column = " | ".join(cells[2:])
        found |= {s for s in re.findall(r"`([^`]+)`", body_column) if s[:1] in "[{\"'"}
    return found


# -- errors -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A recorded error answer and what the classifier must make of it."""

    id: str
    operation: str
    status: int
    body: str
    cls: type[KlickTippError]
    error: int | None = None
    message: str | None = None


REFUSALS = [
    Refusal("any route, German plan refusal", "api.tag.index", 403, '["API Zugriff verweigert"]', AuthError,
            message="API Zugriff verweigert"),
    Refusal("index of an empty account", INDEX, 404, '["Es existieren keine Kontakte."]', NotFound),
    Refusal("index, object not created", INDEX, 406, '["Bei der Erstellung des Objekt ist ein Fehler aufgetreten."]',
            Rejected),
    Refusal("field index, object not created", "api.customfield.index", 406,
            '["Bei der Erstellung des Objekt ist ein Fehler aufgetreten."]', Rejected),
    Refusal("unknown subscriber, empty body", GET, 404, "", NotFound,
            message="HTTP 404 Not Found with an empty body"),
    Refusal("subscribe without email: a request error, not auth", CREATE, 401, '{"error": 32}', ValidationError,
            error=32),
    Refusal("search miss, raw German text", SEARCH, 404, "[Diesen Kontakt gibt es nicht.]", NotFound,
            message="Diesen Kontakt gibt es nicht."),
    *(Refusal(f"{op} without email: raw, a request bug", op, 401, "[Missing required argument email]",
              BadRequest, message="Missing required argument email") for op in (UNSUBSCRIBE, TAG, UNTAG)),
    Refusal("unsubscribe, unknown email", UNSUBSCRIBE, 406, '{"error": 7}', ContactNotFound, error=7),
    Refusal("tag, unknown mail / tag", TAG, 406, '{"error": 7}', ContactOrTagNotFound, error=7),
    Refusal("untag, unknown mail / tag", UNTAG, 406, '{"error": 7}', ContactOrTagNotFound, error=7),
    Refusal("unsubscribe, pending", UNSUBSCRIBE, 406, '{"error": 9}', NotSubscribedError, error=9),
    Refusal("tagged without tagid: raw, a request bug", TAGGED, 401, "[Missing required argument tagid]",
            BadRequest),
    Refusal("update of an unknown contact", "api.subscriber.update", 406, '["Der Kontakt existiert nicht."]',
            Rejected, message="Der Kontakt existiert nicht."),
    Refusal("signin without apikey (JSON form)", "api.listbuilding.signin", 401,
            '["Missing required argument apikey"]', BadRequest),
    Refusal("signin, wrong apikey, empty 500", "api.listbuilding.signin", 500, "", ServerError,
            message="HTTP 500 Internal Server Error with an empty body"),
    Refusal("signout", "api.listbuilding.signout", 406, '{"error": 403}', ReferenceNotFound, error=403),
    Refusal("signoff", "api.listbuilding.signoff", 406, '{"error": 9}', NotSubscribedError, error=9),
    Refusal("wrong method, bare JSON string", "api.tag.delete", 405,
            r'"No route found for \"DELETE https:\/\/api-internal.klicktipp.com\/api\/tag.json\": Method Not Allowed (Allow: GET, POST)"',
            MethodNotAllowed,
            message='No route found for "DELETE https://api-internal.klicktipp.com/api/tag.json": Method Not Allowed'
                    " (Allow: GET, POST)"),
    *(Refusal(f"{op} of an unknown tag", op, 404, '["Kein Tag mit dieser ID."]', NotFound)
      for op in ("api.tag.retrieve", "api.tag.update", "api.tag.delete")),
    Refusal("legacy PUT of an unknown field", "api.customfield.update", 404, '["Kein Tag mit dieser ID."]', NotFound),
    Refusal("unknown opt-in process", "api.optin.retrieve", 404, '["Kein Opt-In-Prozess mit dieser ID."]',
            NotFound),
    Refusal("redirect, unknown opt-in process", "api.optin.redirect", 404, '["Kein Opt-In-Prozess mit dieser ID."]',
            NotFound),
    Refusal("subscribe refused as a string 'Error 4'", CREATE, 406, '["Error 4"]', SubscriptionNotFound, error=4),
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.id)
def test_each_recorded_refusal_is_classified_as_the_evidence_says(case: Refusal) -> None:
    error = error_from_response(status=case.status, headers={}, body=case.body, operation=case.operation)

    assert type(error) is case.cls
    assert error.error == case.error
    if case.message is not None:
        assert error.message == case.message
    assert error.status == case.status


# -- answers ----------------------------------------------------------------------------------------------


def recorded_subscriber() -> str:
    """§11's subscriber object, with its ``…`` replaced by the 16 global fields, all ``""``."""
    block = re.search(r"```\n(\{.*?\})\n```", section(), re.DOTALL)
    assert block is not None, "§11 has no subscriber object"
    fields = ",".join(f'"{key}":""' for key in GLOBAL_FIELDS)
    text = block.group(1).replace('"fieldFirstName":"", …, "fieldLeadValue":""', fields)
    assert "…" not in text
    return text


def check_subscriber(value: Any) -> None:
    assert value.id == "155988456"
    assert value.email == "testsubscriber@mydomain.com"
    assert value.subscription is SubscriptionStatus.PENDING
    assert value.sms_phone is None
    assert value.listid == "368370"
    assert dict(value.fields) == dict.fromkeys(GLOBAL_FIELDS, "")
    assert value.tags_known is False, "no tags, manual_tags or smart_tags: the tags are unknown, not none"


@dataclass(frozen=True)
class Answer:
    id: str
    body: str
    parse: Callable[[object], Any]
    check: Callable[[Any], None]


ANSWERS = [
    Answer("index: a plain ID array", '["29513792","29513793","29513794","29513795"]', p.parse_id_list,
           lambda v: v == ["29513792", "29513793", "29513794", "29513795"] or pytest.fail(repr(v))),
    Answer("search hit", "[155986456]", p.parse_optional_id, lambda v: v == "155986456" or pytest.fail(repr(v))),
    Answer("[true]", "[true]", p.expect_ok, lambda v: v is None or pytest.fail(repr(v))),
    Answer("tagged: id -> unix seconds", '{"155986456":"1735426641","155986457":"1735426642"}',
           p.parse_timestamp_map,
           lambda v: v == {"155986456": 1735426641, "155986457": 1735426642} or pytest.fail(repr(v))),
    Answer("signin: the pending URL", '["https://klick.marketron.io/pending/p9i3z8e6az2xxgcnzzpze5fa"]',
           p.parse_url, lambda v: v.endswith("/pending/p9i3z8e6az2xxgcnzzpze5fa") or pytest.fail(v)),
    Answer("redirect: the thank-you URL", '["https://klick.marketron.io/thankyou/p9i3z8e6ab4xx5uvzzpzd768"]',
           p.parse_url, lambda v: "/thankyou/" in v or pytest.fail(v)),
    Answer("an opt-in process", '{"listid":"470370","name":"name 1","pendingurl":"","thankyouurl":"",'
           '"usesingleoptin":false,"resendconfirmationemail":false,"usechangeemail":false}',
           p.parse_optin_process,
           lambda v: (v.id, v.name, v.use_single_optin) == ("470370", "name 1", False) or pytest.fail(repr(v))),
]  # fmt: skip


@pytest.mark.parametrize("case", ANSWERS, ids=lambda case: case.id)
def test_each_recorded_answer_parses_to_its_value(case: Answer) -> None:
    case.check(case.parse(json.loads(case.body)))


def test_the_recorded_subscriber_object_parses_with_its_tags_unknown() -> None:
    check_subscriber(p.parse_subscriber(json.loads(recorded_subscriber())))


# -- the client over a mocked wire: the branches the classes lead to ------------------------------------


@pytest.fixture
def client() -> KlickTippClient:
    return KlickTippClient(PartnerAuth(USERNAME, DEVELOPER_KEY, CUSTOMER_KEY), session=requests.Session())


def test_a_raw_search_miss_is_not_found_not_a_retry(
    rsps: responses.RequestsMock, client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/subscriber/search", status=404, body="[Diesen Kontakt gibt es nicht.]",
             content_type="application/json")  # fmt: skip
    assert client.subscriber_search("nobody@shop.example") is None
    assert len(rsps.calls) == 1


def test_an_empty_account_lists_no_contacts(rsps: responses.RequestsMock, client: KlickTippClient) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber", status=404, json=["Es existieren keine Kontakte."])
    assert client.subscriber_index() == []


def test_an_unknown_contact_is_not_found_with_the_reason_phrase(
    rsps: responses.RequestsMock, client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber/404404", status=404, body="")
    with pytest.raises(NotFound) as caught:
        client.subscriber_get("404404")
    assert caught.value.http_reason == "Not Found"
    assert "HTTP 404 Not Found" in str(caught.value)
    assert caught.value.to_dict()["http_reason"] == "Not Found"


# -- the document and these cases agree -------------------------------------------------------------------

COVERED = {c.body for c in REFUSALS} | {a.body for a in ANSWERS} | {"''"}


def test_every_body_here_is_recorded_in_the_document() -> None:
    snippets = recorded_snippets()
    assert len(snippets) > 20, "§11's table was not found or not read"
    missing = sorted(body for body in COVERED - {""} if body not in snippets)
    assert not missing, f"not (any more) in KLICKTIPP_API.md §11: {missing}"


def test_every_recording_of_the_document_has_a_case_here() -> None:
    uncovered = sorted(recorded_snippets() - COVERED)
    assert not uncovered, f"recorded in KLICKTIPP_API.md §11 but not replayed here: {uncovered}"
