"""Route table, path normalization, and error-body shapes."""

from __future__ import annotations

import json

import pytest

from fake_klicktipp.errors import (
    ContactUnsubscribed,
    EmailRequired,
    FieldRejected,
    MissingArgument,
    Msg,
    Refused,
    Rejected,
    RetrieveMiss,
    SearchMiss,
    UnknownTag,
)
from fake_klicktipp.options import Options, profile_options
from fake_klicktipp.routing import LEGACY_OPERATION_IDS, OPERATION_IDS, match, normalize
from fake_klicktipp.shapes import error_reply
from tests.spec import SPEC_PATH as SPEC


def test_the_route_table_covers_exactly_the_spec_operations():
    spec = json.loads(SPEC.read_text())
    spec_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert spec_ids == OPERATION_IDS
    assert len(OPERATION_IDS) == 22
    assert {"api.customfield.delete"} == LEGACY_OPERATION_IDS
    assert not spec_ids & LEGACY_OPERATION_IDS


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/subscriber", "/subscriber"),
        ("/api/subscriber.json", "/subscriber"),
        ("/tag/12.json", "/tag/12"),
        ("/tag/", "/tag"),
    ],
)
def test_api_prefix_and_json_suffix_are_tolerated(raw, normalized):
    assert normalize(raw) == normalized


@pytest.mark.parametrize(
    ("method", "path", "operation", "param"),
    [
        ("POST", "/subscriber/tag", "api.subscriber.tag", None),
        ("GET", "/subscriber/123", "api.subscriber.retrieve", "123"),
        ("PUT", "/api/subscriber/123.json", "api.subscriber.update", "123"),
        ("POST", "/list/redirect", "api.optin.redirect", None),
        ("GET", "/list/3", "api.optin.retrieve", "3"),
        ("GET", "/field/FirstName", "api.customfield.retrieve", "FirstName"),
        ("DELETE", "/field/100001", "api.customfield.delete", "100001"),
    ],
)
def test_routes(method, path, operation, param):
    found = match(method, path)
    assert found.operation is not None
    assert (found.operation.id, found.param) == (operation, param)


def test_wrong_method_lists_the_allowed_ones():
    found = match("DELETE", "/tag")
    assert found.operation is None
    assert found.allowed == ("GET", "POST")


def test_unknown_paths_do_not_match():
    assert match("GET", "/subscriber/1/extra").operation is None
    assert match("GET", "/nothing").allowed == ()


ERRORS = [
    (Rejected(10, 4), {}, (406, {"error": 10, "code": 4})),
    (Rejected(507), {}, (406, {"error": 507})),
    (Refused(404, Msg.CONTACT_NOT_FOUND), {}, (404, ["There is no such entity."])),
    (Refused(404, Msg.CONTACT_NOT_FOUND), {"german": True}, (404, ["Diesen Kontakt gibt es nicht."])),
    (Refused(403, Msg.ACCESS_DENIED), {"german": True}, (403, ["API Zugriff verweigert"])),
    (
        Refused(406, Msg.TAG_EXISTS, name="x"),
        {},
        (406, ["A tag or SmartLink with the name x already exists."]),
    ),
    (ContactUnsubscribed(), {}, (406, {"error": 10, "code": 4})),
    (ContactUnsubscribed(), {"unsubscribed_error": {"error": 4}}, (406, {"error": 4})),
    (
        FieldRejected(
            field="Lead Value", name="fieldLeadValue", value="abc", reason="must be a numeric value"
        ),
        {},
        (
            406,
            {
                "error": 8,
                "field": "Lead Value",
                "name": "fieldLeadValue",
                "field_value": "abc",
                "reason": "must be a numeric value",
            },
        ),
    ),
    (
        FieldRejected(field="L", name="k", value="v", reason="r", on_update=True),
        {"update_validation_error7": True},
        (406, {"error": 7}),
    ),
]


@pytest.mark.parametrize(("err", "options", "expected"), ERRORS)
def test_error_shapes(err, options, expected):
    reply = error_reply(err, Options(**options))
    assert (reply.status, reply.body) == expected
    assert reply.raw is None


RECORDED_RAW = [
    (MissingArgument("email"), 401, b"[Missing required argument email]"),
    (SearchMiss(), 404, b"[Diesen Kontakt gibt es nicht.]"),
    (RetrieveMiss(), 404, b""),
]


@pytest.mark.parametrize(("err", "status", "raw"), RECORDED_RAW)
def test_recorded_raw_and_empty_bodies(err, status, raw):
    reply = error_reply(err, profile_options("recorded"))
    assert (reply.status, reply.body, reply.raw) == (status, None, raw)


RECORDED_JSON = [
    (EmailRequired(), (401, {"error": 32})),
    (UnknownTag(), (406, {"error": 7})),
    (ContactUnsubscribed(), (406, ["Error 4"])),
    (Refused(404, Msg.TAG_NOT_FOUND), (404, ["Kein Tag mit dieser ID."])),
]


@pytest.mark.parametrize(("err", "expected"), RECORDED_JSON)
def test_recorded_json_bodies(err, expected):
    reply = error_reply(err, profile_options("recorded"))
    assert (reply.status, reply.body) == expected


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (EmailRequired(), (406, {"error": 32})),
        (UnknownTag(), (406, {"error": 403})),
        (MissingArgument("tagid"), (401, ["Missing required argument tagid"])),
        (RetrieveMiss(), (404, ["There is no such entity."])),
    ],
)
def test_the_same_errors_documented(err, expected):
    reply = error_reply(err, Options())
    assert (reply.status, reply.body, reply.raw) == (*expected, None)
