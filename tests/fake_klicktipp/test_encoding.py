"""Body decoding: JSON, PHP-style form keys, multipart."""

from __future__ import annotations

import json

import pytest
from urllib3 import encode_multipart_formdata

from fake_klicktipp.encoding import BodyError, parse_body, parse_query, php_nest

FORM = "application/x-www-form-urlencoded"


def test_php_nested_keys_build_maps_and_lists():
    body = parse_body(
        FORM,
        b"email=a%40b.example&fields%5BfieldFirstName%5D=Alex&fields[fieldCity]=Berlin"
        b"&tagids[0]=17&tagids[1]=18",
    )
    assert body == {
        "email": "a@b.example",
        "fields": {"fieldFirstName": "Alex", "fieldCity": "Berlin"},
        "tagids": ["17", "18"],
    }


def test_empty_brackets_append():
    assert php_nest([("tagids[]", "17"), ("tagids[]", "18")]) == {"tagids": ["17", "18"]}


def test_numeric_keys_are_ordered_by_number():
    assert php_nest([("a[10]", "x"), ("a[2]", "y")]) == {"a": ["y", "x"]}


def test_deeper_nesting():
    assert php_nest([("a[b][c]", "1"), ("a[b][d]", "2")]) == {"a": {"b": {"c": "1", "d": "2"}}}


def test_a_key_that_is_both_value_and_container_is_refused():
    with pytest.raises(BodyError):
        php_nest([("a", "1"), ("a[b]", "2")])


def test_json_object_body():
    assert parse_body("application/json; charset=utf-8", b'{"tagids": [1, 2]}') == {"tagids": [1, 2]}


def test_empty_body_is_an_empty_map():
    assert parse_body("application/json", b"") == {}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        (FORM, b"a=1&&=&b"),
        ("text/plain", b"hello"),
        ("application/json", b"\xff\xfe"),
    ],
)
def test_unparseable_bodies_raise(content_type, body):
    with pytest.raises(BodyError):
        parse_body(content_type, body)


def test_multipart_form_data_with_php_keys():
    payload, content_type = encode_multipart_formdata(
        [
            ("email", "m@shop.example"),
            ("fields[fieldFirstName]", "Mia"),
            ("tagids[]", "10"),
            ("tagids[]", "11"),
        ]
    )
    assert parse_body(content_type, payload) == {
        "email": "m@shop.example",
        "fields": {"fieldFirstName": "Mia"},
        "tagids": ["10", "11"],
    }


def test_multipart_without_boundary_is_refused():
    with pytest.raises(BodyError):
        parse_body("multipart/form-data", b"garbage")


def test_query_strings_decode_like_forms():
    assert parse_query(b"status=subscribed,pending&bounceStatus=nobounce") == {
        "status": "subscribed,pending",
        "bounceStatus": "nobounce",
    }


def test_json_round_trip_keeps_unicode():
    assert parse_body("application/json", json.dumps({"name": "Müller"}).encode()) == {"name": "Müller"}
