"""``error_from_response`` and ``error_from_exception``: one table row per kind of answer KlickTipp gives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest
import requests

from ktsync.worker.klicktipp import (
    AuthError,
    BadRequest,
    ConflictError,
    ContactNotFound,
    ContactOrTagNotFound,
    KlickTippError,
    MalformedResponse,
    MethodNotAllowed,
    NotFound,
    NotSubscribedError,
    RateLimited,
    ReferenceNotFound,
    Rejected,
    RequestTimeout,
    ServerError,
    SubscriptionNotFound,
    TransportError,
    UnexpectedStatus,
    UnsubscribedError,
    ValidationError,
    error_from_exception,
    error_from_response,
    parse_retry_after,
)

NOW = 1_700_000_000.0
CREATE, UPDATE, TAG = "api.subscriber.create", "api.subscriber.update", "api.subscriber.tag"
HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class Row:
    id: str
    status: int
    body: Any
    cls: type[KlickTippError]
    reason: str
    retryable: bool
    error: int | None = None
    code: int | None = None
    operation: str = CREATE
    headers: dict[str, str] = field(default_factory=dict)
    #: Further attributes the error must carry.
    extra: dict[str, Any] = field(default_factory=dict)


def j(value: Any) -> str:
    return json.dumps(value)


FIELD_OBJECT = {
    "error": 8,
    "field": "Lead Value",
    "name": "fieldLeadValue",
    "field_value": "abc",
    "reason": "must be a numeric value",
}

ROWS = [
    # -- 400 / 401 / 403 / 404 / 405 ------------------------------------------------------------------------
    Row("400 string array", 400, j(['The key "username" must be a string.']), BadRequest, "bad_request", False,
        extra={"messages": ('The key "username" must be a string.',)}),
    Row("401 wrong login", 401, j(["Wrong username or password."]), AuthError, "auth", False),
    Row("401 wrong login german", 401, j(["Falscher Benutzername oder Passwort."]), AuthError, "auth", False,
        extra={"message": "Falscher Benutzername oder Passwort."}),
    Row("401 missing argument (raw, not JSON) is a request bug", 401, "[Missing required argument tagid]",
        BadRequest, "bad_request", False, extra={"messages": ("Missing required argument tagid",)}),
    Row("401 missing argument as JSON: the framework's marker", 401, j(["Missing required argument apikey"]),
        BadRequest, "bad_request", False),
    Row("401 other raw text is a request bug too", 401, "[Fehlendes Argument email]", BadRequest,
        "bad_request", False),
    Row("403 access denied", 403, j(["API access denied."]), AuthError, "auth", False),
    Row("403 german", 403, j(["API Zugriff verweigert"]), AuthError, "auth", False),
    Row("403 empty body", 403, "", AuthError, "auth", False),
    Row("403 html from a proxy", 403, HTML, AuthError, "auth", False),
    Row("401 with a business code", 401, j({"error": 32}), ValidationError, "validation", False, error=32),
    Row("403 with invalid api key code", 403, j({"error": 100}), AuthError, "auth", False, error=100),
    Row("404 entity", 404, j(["There is no such entity."]), NotFound, "not_found", False),
    Row("404 german", 404, j(["Kein Opt-In-Prozess mit dieser ID."]), NotFound, "not_found", False),
    Row("404 html: the status decides", 404, HTML, NotFound, "not_found", False),
    Row("404 raw german search miss", 404, "[Diesen Kontakt gibt es nicht.]", NotFound, "not_found", False,
        operation="api.subscriber.search", extra={"message": "Diesen Kontakt gibt es nicht."}),
    Row("404 empty body keeps the reason phrase", 404, "", NotFound, "not_found", False,
        operation="api.subscriber.retrieve",
        extra={"message": "HTTP 404 Not Found with an empty body", "http_reason": "Not Found"}),
    Row("404 with a code is still not found", 404, j({"error": 7}), NotFound, "not_found", False, error=7),
    Row("405 json string", 405,
        j('No route found for "DELETE https://api-internal.klicktipp.com/api/tag.json": Method Not Allowed'
          " (Allow: GET, POST)"),
        MethodNotAllowed, "method_not_allowed", False),
    # -- 406: numeric codes --------------------------------------------------------------------------------
    Row("406 error 7 on update is validation", 406, j({"error": 7}), ValidationError, "validation", False,
        error=7, operation=UPDATE),
    Row("406 error 7 on tag: contact or tag unknown", 406, j({"error": 7}), ContactOrTagNotFound,
        "contact_or_tag_not_found", False, error=7, operation=TAG),
    Row("406 error 7 on untag", 406, j({"error": 7}), ContactOrTagNotFound, "contact_or_tag_not_found", False,
        error=7, operation="api.subscriber.untag"),
    Row("406 error 7 on get", 406, j({"error": 7}), ContactNotFound, "contact_not_found", False, error=7,
        operation="api.subscriber.retrieve"),
    Row("406 error 7 on unsubscribe", 406, j({"error": 7}), ContactNotFound, "contact_not_found", False,
        error=7, operation="api.subscriber.unsubscribe"),
    Row("406 error 4", 406, j({"error": 4}), SubscriptionNotFound, "subscription_not_found", False, error=4),
    Row("406 ['Error 4'] reads as error 4", 406, j(["Error 4"]), SubscriptionNotFound,
        "subscription_not_found", False, error=4, extra={"messages": ("Error 4",)}),
    Row("406 ['Error 7'] on tag", 406, j(["Error 7"]), ContactOrTagNotFound, "contact_or_tag_not_found", False,
        error=7, operation=TAG),
    Row("406 error 10 code 4", 406, j({"error": 10, "code": 4}), UnsubscribedError, "unsubscribed", False,
        error=10, code=4),
    Row("406 error 10 code 10 (sms)", 406, j({"error": 10, "code": 10}), UnsubscribedError, "unsubscribed",
        False, error=10, code=10),
    Row("406 error 10 code 9 (sms taken)", 406, j({"error": 10, "code": 9}), ConflictError, "conflict", False,
        error=10, code=9),
    Row("406 error 10 code 5", 406, j({"error": 10, "code": 5}), ValidationError, "validation", False,
        error=10, code=5),
    Row("406 error 10 code 11", 406, j({"error": 10, "code": 11}), ValidationError, "validation", False,
        error=10, code=11),
    Row("406 error 10 code 30 (blocked)", 406, j({"error": 10, "code": 30}), ValidationError, "validation",
        False, error=10, code=30),
    Row("406 error 10 code 12 internal", 406, j({"error": 10, "code": 12}), ServerError, "server", True,
        error=10, code=12),
    Row("406 error 10 unknown code", 406, j({"error": 10, "code": 99}), Rejected, "rejected", False,
        error=10, code=99),
    Row("406 error 10 no code", 406, j({"error": 10}), Rejected, "rejected", False, error=10,
        extra={"message": "Subscriber update failed (see the subcode)"}),
    Row("406 error 507", 406, j({"error": 507}), ConflictError, "conflict", False, error=507, operation=UPDATE),
    Row("406 error 30", 406, j({"error": 30}), ConflictError, "conflict", False, error=30, operation=UPDATE),
    Row("406 error 9", 406, j({"error": 9}), NotSubscribedError, "not_subscribed", False, error=9),
    Row("406 error 5", 406, j({"error": 5}), ValidationError, "validation", False, error=5),
    Row("406 error 8", 406, j({"error": 8}), ValidationError, "validation", False, error=8),
    Row("406 error 11", 406, j({"error": 11}), ValidationError, "validation", False, error=11),
    Row("406 error 401 code", 406, j({"error": 401}), ContactNotFound, "contact_not_found", False, error=401),
    Row("406 error 402 list", 406, j({"error": 402}), ReferenceNotFound, "reference_not_found", False,
        error=402, extra={"kind": "list"}),
    Row("406 error 403 tag", 406, j({"error": 403}), ReferenceNotFound, "reference_not_found", False,
        error=403, operation=TAG, extra={"kind": "tag"}),
    Row("406 error 31 smarttag", 406, j({"error": 31}), Rejected, "rejected", False, error=31),
    Row("406 error 12 internal", 406, j({"error": 12}), ServerError, "server", True, error=12),
    Row("406 unknown error", 406, j({"error": 999}), Rejected, "rejected", False, error=999),
    Row("406 codes as strings", 406, j({"error": "10", "code": "4"}), UnsubscribedError, "unsubscribed",
        False, error=10, code=4),
    Row("406 object inside an array", 406, j([{"error": 9}]), NotSubscribedError, "not_subscribed", False,
        error=9),
    # -- 406: the field-validation object ------------------------------------------------------------------
    Row("406 field validation object", 406, j(FIELD_OBJECT), ValidationError, "validation", False, error=8,
        extra={
            "field": "Lead Value",
            "field_key": "fieldLeadValue",
            "field_value": "abc",
            "field_reason": "must be a numeric value",
            "message": 'Validation error: Lead Value "fieldLeadValue" with value "abc" must be a numeric value',
        }),
    Row("406 field object without error", 406, j({"field": "E-Mail", "name": "email", "reason": "is invalid"}),
        ValidationError, "validation", False,
        extra={"field": "E-Mail", "field_key": "email", "field_value": None, "field_reason": "is invalid"}),
    Row("406 field object with error 7 on update", 406, j({**FIELD_OBJECT, "error": 7}), ValidationError,
        "validation", False, error=7, operation=UPDATE, extra={"field_key": "fieldLeadValue"}),
    # -- 406: string arrays (never matched) ---------------------------------------------------------------
    Row("406 german contact missing", 406, j(["Der Kontakt existiert nicht."]), Rejected, "rejected", False,
        operation=UPDATE, extra={"messages": ("Der Kontakt existiert nicht.",)}),
    Row("406 german tag not created", 406, j(["Tag konnte nicht erstellt werden."]), Rejected, "rejected",
        False, operation="api.tag.create"),
    Row("406 english duplicate tag", 406, j(["A tag or SmartLink with the name x already exists."]), Rejected,
        "rejected", False, operation="api.tag.create"),
    Row("406 umlauts survive", 406, "[\"Ungültige E-Mail-Adresse\"]".encode(), Rejected, "rejected", False,
        extra={"message": "Ungültige E-Mail-Adresse"}),
    Row("406 already logged in", 406, j(["Sie sind bereits eingeloggt."]), Rejected, "rejected", False,
        operation="api.account.login"),
    Row("406 empty body", 406, "", Rejected, "rejected", False,
        extra={"message": "HTTP 406 Not Acceptable with an empty body"}),
    Row("406 a message that merely mentions an error", 406, j(["Error 4 happened"]), Rejected, "rejected",
        False),
    # -- 406: a JSON object embedded in text ("regex the first {…}") ----------------------------------------
    Row("406 object embedded in a string", 406, j(['Fehler: {"error":10,"code":4}']), UnsubscribedError,
        "unsubscribed", False, error=10, code=4),
    Row("406 object embedded in plain text", 406, 'Request failed: {"error": 507} (see docs)', ConflictError,
        "conflict", False, error=507),
    # -- a body that is not JSON: the status decides; only a 2xx is malformed -----------------------------
    Row("406 truncated json", 406, '{"error": 7', Rejected, "rejected", False),
    Row("406 json number", 406, "42", Rejected, "rejected", False),
    Row("406 html", 406, HTML, Rejected, "rejected", False,
        extra={"message": "HTTP 406 Not Acceptable with an unexpected body: 502 Bad Gateway Bad Gateway"}),
    Row("200 handed in", 200, j(["unexpected"]), MalformedResponse, "malformed_response", True),
    # -- 409 / 429 / 5xx / others --------------------------------------------------------------------------
    Row("409 duplicate list", 409, j(["A list with the name x already exists."]), ConflictError, "conflict",
        False),
    Row("429 without retry-after", 429, "", RateLimited, "rate_limited", True, extra={"retry_after": None}),
    Row("429 retry-after seconds", 429, j(["slow down"]), RateLimited, "rate_limited", True,
        headers={"Retry-After": "30"}, extra={"retry_after": 30.0}),
    Row("429 retry-after http-date", 429, "", RateLimited, "rate_limited", True,
        headers={"retry-after": formatdate(NOW + 45, usegmt=True)}, extra={"retry_after": 45.0}),
    Row("429 retry-after date in the past", 429, "", RateLimited, "rate_limited", True,
        headers={"Retry-After": formatdate(NOW - 45, usegmt=True)}, extra={"retry_after": 0.0}),
    Row("429 retry-after garbage", 429, "", RateLimited, "rate_limited", True,
        headers={"Retry-After": "soon"}, extra={"retry_after": None}),
    Row("429 html", 429, HTML, RateLimited, "rate_limited", True),
    Row("500 empty body", 500, "", ServerError, "server", True,
        extra={"message": "HTTP 500 Internal Server Error with an empty body"}),
    Row("502 html", 502, HTML, ServerError, "server", True, extra={"retry_after": None}),
    Row("503 retry-after", 503, "", ServerError, "server", True, headers={"Retry-After": "120"},
        extra={"retry_after": 120.0}),
    Row("500 with error body", 500, j({"error": 7}), ServerError, "server", True, error=7),
    Row("406 retry-after is kept", 406, j({"error": 9}), NotSubscribedError, "not_subscribed", False, error=9,
        headers={"Retry-After": "5"}, extra={"retry_after": 5.0}),
    Row("410 gone", 410, j(["gone"]), UnexpectedStatus, "unexpected_status", False),
    Row("302 redirect", 302, "", UnexpectedStatus, "unexpected_status", False),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_error_from_response(row: Row) -> None:
    # Given an error answer, When it is classified
    error = error_from_response(
        status=row.status, headers=row.headers, body=row.body, operation=row.operation, now=NOW
    )

    # Then class, reason, retryability and the numeric codes are as documented
    assert type(error) is row.cls
    assert (error.reason, error.retryable) == (row.reason, row.retryable)
    assert (error.error, error.code) == (row.error, row.code)
    assert (error.status, error.operation) == (row.status, row.operation)
    for name, value in row.extra.items():
        assert getattr(error, name) == value, name
    if "retry_after" not in row.extra and not row.headers:
        assert error.retry_after is None
    if isinstance(error, ValidationError) and not any(name.startswith("field") for name in row.extra):
        assert (error.field, error.field_key, error.field_value, error.field_reason) == (None,) * 4
    # And the error is always printable and JSON-safe
    assert row.operation in str(error)
    json.dumps(error.to_dict())


def test_every_class_and_reason_is_covered_by_the_table() -> None:
    covered = {row.cls for row in ROWS}
    assert covered >= {
        AuthError, BadRequest, ConflictError, ContactNotFound, MalformedResponse, MethodNotAllowed, NotFound,
        NotSubscribedError, RateLimited, ReferenceNotFound, Rejected, ServerError, UnexpectedStatus,
        UnsubscribedError, ValidationError,
    }  # fmt: skip


def test_the_classifier_never_reads_message_text() -> None:
    # The same words in English or German must not change the class (only "Error N" as the whole
    # message is a code: the string form of {"error": N})
    bodies = [["Der Kontakt ist abgemeldet."], ["contact unsubscribed"], ["Tag not found"], ["Error 4 of 9"]]
    classes = {type(error_from_response(status=406, headers={}, body=j(b), operation=TAG)) for b in bodies}
    assert classes == {Rejected}


def test_strings_and_bytes_are_read_alike() -> None:
    as_text = error_from_response(status=406, headers={}, body=j({"error": 9}), operation=TAG)
    as_bytes = error_from_response(status=406, headers={}, body=j({"error": 9}).encode(), operation=TAG)
    assert as_text.to_dict() == as_bytes.to_dict()


def test_requests_case_insensitive_headers_are_read() -> None:
    headers = requests.structures.CaseInsensitiveDict({"RETRY-AFTER": "7"})
    assert error_from_response(status=429, headers=headers, body="", operation=TAG).retry_after == 7.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("  12 ", 12.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("nan", None),
        ("inf", None),
        (formatdate(NOW + 60, usegmt=True), 60.0),
        ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: ambiguous, ignored
        ("next tuesday", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("exc", "cls", "reason"),
    [
        (requests.ConnectionError("Connection refused"), TransportError, "transport"),
        (requests.exceptions.SSLError("bad certificate"), TransportError, "transport"),
        (requests.exceptions.ChunkedEncodingError("cut off"), TransportError, "transport"),
        (requests.ReadTimeout("read timed out"), RequestTimeout, "timeout"),
        (requests.ConnectTimeout("connect timed out"), RequestTimeout, "timeout"),
    ],
)
def test_error_from_exception(exc: requests.RequestException, cls: type[TransportError], reason: str) -> None:
    error = error_from_exception(exc, operation=TAG)
    assert type(error) is cls
    assert (error.reason, error.retryable, error.status, error.operation) == (reason, True, None, TAG)
    assert type(exc).__name__ in error.message
