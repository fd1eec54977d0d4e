"""Route table, path normalization, and error-body shapes."""

from __future__ import annotations

import json

import pytest

from fake_klicktipp.errors import ContactUnsubscribed, FieldRejected, Msg, Refused, Rejected, error_response
from fake_klicktipp.routing import OPERATION_IDS, match, normalize
from tests.spec import SPEC_PATH as SPEC


def test_the_route_table_covers_exactly_the_spec_operations():
    spec = json.loads(SPEC.read_text())
    spec_ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert spec_ids == OPERATION_IDS
    assert len(OPERATION_IDS) == 22


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
    (ContactUnsubscribed(), {"unsubscribed_body": {"error": 4}}, (406, {"error": 4})),
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
        {"update_error7": True},
        (406, {"error": 7}),
    ),
]


@pytest.mark.parametrize(("err", "options", "expected"), ERRORS)
def test_error_shapes(err, options, expected):
    settings = {
        "german": False,
        "unsubscribed_body": {"error": 10, "code": 4},
        "update_error7": False,
    } | options
    assert error_response(err, **settings) == expected
