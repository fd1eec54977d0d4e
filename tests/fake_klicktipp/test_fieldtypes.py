"""Field-type validation and phone normalization, as a table."""

from __future__ import annotations

import pytest

from fake_klicktipp.fieldtypes import InvalidValue, normalize_phone, normalize_sms_number, normalize_value

ACCEPTED = [
    ("line", "Alex Example", "Alex Example"),
    ("line", "", ""),
    ("line", None, ""),
    ("paragraph", "Dies ist ein Text.\nMit Absatz.", "Dies ist ein Text.\nMit Absatz."),
    ("html", "<strong>Hello</strong>", "<strong>Hello</strong>"),
    ("email", "alex@shop.example", "alex@shop.example"),
    ("number", "42", "42"),
    ("number", 42, "42"),
    ("number", " 7 ", "7"),
    ("decimal", "1999", "1999"),
    ("decimal", 100, "100"),
    ("url", "https://klicktipp.com", "https://klicktipp.com"),
    ("url", "http://shop.example/path?q=1", "http://shop.example/path?q=1"),
    ("date", "755222400", "755222400"),
    ("date", -86400, "-86400"),
    ("datetime", "1715603400", "1715603400"),
    ("time", "0", "0"),
    ("time", 52200, "52200"),
    ("time", "86399", "86399"),
    ("phone", "+49 170 123-4567", "00491701234567"),
    ("phone", "004922012345678", "004922012345678"),
    ("phone", "0221 123456", "0221123456"),
]

REFUSED = [
    ("line", "two\nlines", "must not contain line breaks"),
    ("line", ["a"], "must be a string"),
    ("line", True, "must be a string"),
    ("email", "no-at-sign", "must be a valid email address"),
    ("number", "4.2", "must be a numeric value"),
    ("number", "-3", "must be a numeric value"),
    ("number", 4.2, "must be an integer value"),
    ("number", "abc", "must be a numeric value"),
    ("decimal", "19.99", "must be an integer value (decimal numbers are sent multiplied by 100)"),
    ("url", "www.shop.example", "must be a URL starting with http:// or https://"),
    ("url", "ftp://shop.example", "must be a URL starting with http:// or https://"),
    ("date", "08.05.2024", "must be a unix timestamp in seconds"),
    ("date", "1715126400000", "must be a unix timestamp in seconds, not milliseconds"),
    ("datetime", "2024-05-13 12:30", "must be a unix timestamp in seconds"),
    ("time", "86400", "must be seconds since midnight (0-86399)"),
    ("time", "-1", "must be seconds since midnight (0-86399)"),
    ("phone", "call me", "must be a phone number"),
]


@pytest.mark.parametrize(("field_type", "raw", "stored"), ACCEPTED)
def test_accepted_values_are_normalized(field_type, raw, stored):
    assert normalize_value(field_type, raw) == stored


@pytest.mark.parametrize(("field_type", "raw", "reason"), REFUSED)
def test_refused_values_carry_a_reason(field_type, raw, reason):
    with pytest.raises(InvalidValue) as caught:
        normalize_value(field_type, raw)
    assert caught.value.reason == reason


def test_phone_plus_becomes_double_zero():
    assert normalize_phone("+491701234567") == "00491701234567"


@pytest.mark.parametrize("raw", ["+4912345678", "004912345678", "+49 123 456 78"])
def test_sms_numbers_are_stored_with_double_zero(raw):
    assert normalize_sms_number(raw) == "004912345678"


@pytest.mark.parametrize("raw", ["012345678", "12345678", "+49abc", "+0"])
def test_sms_numbers_must_be_international(raw):
    with pytest.raises(InvalidValue):
        normalize_sms_number(raw)
