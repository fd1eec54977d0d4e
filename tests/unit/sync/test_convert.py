"""Tables for converting one CRM property value into a KlickTipp field's wire string."""

import ast
import calendar
import pickle
import sys
from pathlib import Path

import pytest

from ktsync.worker.sync import convert as convert_module
from ktsync.worker.sync.convert import (
    DEFAULT_OPTIONS,
    ConversionError,
    ConversionOptions,
    FieldType,
    convert,
)

LINE, PARAGRAPH, EMAIL, NUMBER, DECIMAL, URL = (
    FieldType.LINE,
    FieldType.PARAGRAPH,
    FieldType.EMAIL,
    FieldType.NUMBER,
    FieldType.DECIMAL,
    FieldType.URL,
)
DATE, DATETIME, TIME, HTML, PHONE = (
    FieldType.DATE,
    FieldType.DATETIME,
    FieldType.TIME,
    FieldType.HTML,
    FieldType.PHONE,
)
INT64_MAX = 2**63 - 1


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> str:
    """Unix seconds computed independently of the code under test."""
    return str(calendar.timegm((year, month, day, hour, minute, second)))


ACCEPTED = [
    # line: text stripped, numbers as plain decimal text, booleans as options.boolean_text
    pytest.param("  Anna Müller  ", LINE, "Anna Müller", id="line-strips"),
    pytest.param("Anna\n", LINE, "Anna", id="line-trailing-newline-is-surrounding-whitespace"),
    pytest.param("a\tb", LINE, "a\tb", id="line-tab-inside"),
    pytest.param(42, LINE, "42", id="line-int"),
    pytest.param(-3, LINE, "-3", id="line-negative-int"),
    pytest.param(19.99, LINE, "19.99", id="line-float-shortest-form"),
    pytest.param(42.0, LINE, "42.0", id="line-integral-float"),
    pytest.param(1e16, LINE, "10000000000000000", id="line-large-float-no-exponent"),
    pytest.param(True, LINE, "true", id="line-true"),
    pytest.param(False, LINE, "false", id="line-false"),
    # paragraph: line endings normalised to \n
    pytest.param("a\r\nb", PARAGRAPH, "a\nb", id="paragraph-crlf"),
    pytest.param("a\rb", PARAGRAPH, "a\nb", id="paragraph-lone-cr"),
    pytest.param("  a\n  b  \n", PARAGRAPH, "a\n  b", id="paragraph-strips-only-the-ends"),
    pytest.param(7, PARAGRAPH, "7", id="paragraph-int"),
    pytest.param(True, PARAGRAPH, "true", id="paragraph-bool"),
    # email: domain lower-cased, local part kept
    pytest.param("anna@Example.COM", EMAIL, "anna@example.com", id="email-lowercases-domain"),
    pytest.param(" Anna.M+tag@Sub.Example.de ", EMAIL, "Anna.M+tag@sub.example.de", id="email-keeps-local"),
    # number
    pytest.param(42, NUMBER, "42", id="number-int"),
    pytest.param("42", NUMBER, "42", id="number-str"),
    pytest.param(" 42 ", NUMBER, "42", id="number-str-stripped"),
    pytest.param("-3", NUMBER, "-3", id="number-negative-kept"),
    pytest.param("+3", NUMBER, "3", id="number-plus-dropped"),
    pytest.param("-0", NUMBER, "0", id="number-negative-zero"),
    pytest.param("007", NUMBER, "7", id="number-leading-zeros"),
    pytest.param(42.0, NUMBER, "42", id="number-integral-float"),
    pytest.param("42.00", NUMBER, "42", id="number-str-zero-fraction"),
    pytest.param(INT64_MAX, NUMBER, str(INT64_MAX), id="number-int64-max"),
    # decimal: scaled by 100, never rounded
    pytest.param("19.99", DECIMAL, "1999", id="decimal-str"),
    pytest.param(19.99, DECIMAL, "1999", id="decimal-float-no-binary-error"),
    pytest.param(0.29, DECIMAL, "29", id="decimal-float-0.29"),
    pytest.param("19,99", DECIMAL, "1999", id="decimal-comma"),
    pytest.param("0,5", DECIMAL, "50", id="decimal-comma-one-digit"),
    pytest.param("1,5000", DECIMAL, "150", id="decimal-comma-four-zero-padded-digits"),
    pytest.param("1000", DECIMAL, "100000", id="decimal-whole-str"),
    pytest.param(1000, DECIMAL, "100000", id="decimal-int"),
    pytest.param("0.5", DECIMAL, "50", id="decimal-one-place"),
    pytest.param("1.500", DECIMAL, "150", id="decimal-extra-zeros"),
    pytest.param("-5.25", DECIMAL, "-525", id="decimal-negative"),
    pytest.param("-0.00", DECIMAL, "0", id="decimal-negative-zero"),
    pytest.param(" 19.99 ", DECIMAL, "1999", id="decimal-stripped"),
    pytest.param("92233720368547758.07", DECIMAL, str(INT64_MAX), id="decimal-int64-max"),
    # url
    pytest.param("https://shop.example/p?q=1#x", URL, "https://shop.example/p?q=1#x", id="url-https"),
    pytest.param("http://shop.example", URL, "http://shop.example", id="url-http"),
    pytest.param("HTTPS://Shop.Example/Path", URL, "https://Shop.Example/Path", id="url-scheme-lowercased"),
    pytest.param("https://shop.example:8443/x", URL, "https://shop.example:8443/x", id="url-port"),
    pytest.param("  https://shop.example  ", URL, "https://shop.example", id="url-stripped"),
    # date: 00:00 UTC of the calendar date
    pytest.param("1993-12-08", DATE, epoch(1993, 12, 8), id="date-iso"),
    pytest.param("1965-03-02", DATE, epoch(1965, 3, 2), id="date-before-1970-negative"),
    pytest.param("2024-02-29", DATE, epoch(2024, 2, 29), id="date-leap-day"),
    pytest.param("2024-05-13T23:30:00-05:00", DATE, epoch(2024, 5, 13), id="date-from-datetime-west"),
    pytest.param("2024-05-13T00:30:00+02:00", DATE, epoch(2024, 5, 13), id="date-from-datetime-east"),
    pytest.param("2024-05-13T12:00:00", DATE, epoch(2024, 5, 13), id="date-from-naive-datetime"),
    pytest.param(755308800, DATE, "755308800", id="date-unix-int"),
    pytest.param("755308800", DATE, "755308800", id="date-unix-str"),
    pytest.param(755308800.0, DATE, "755308800", id="date-unix-integral-float"),
    # datetime: the instant, in whole seconds
    pytest.param("2024-05-13T12:30:00Z", DATETIME, epoch(2024, 5, 13, 12, 30), id="datetime-z"),
    pytest.param("2024-05-13T12:30:00+02:00", DATETIME, epoch(2024, 5, 13, 10, 30), id="datetime-offset"),
    pytest.param(
        "2024-05-13 12:30:00+0000", DATETIME, epoch(2024, 5, 13, 12, 30), id="datetime-space-basic-off"
    ),
    pytest.param("2024-05-13t12:30:00z", DATETIME, epoch(2024, 5, 13, 12, 30), id="datetime-lowercase-t-z"),
    pytest.param("2024-05-13T12:30Z", DATETIME, epoch(2024, 5, 13, 12, 30), id="datetime-no-seconds"),
    pytest.param(
        "2024-05-13T12:30:00.999Z", DATETIME, epoch(2024, 5, 13, 12, 30), id="datetime-fraction-floor"
    ),
    pytest.param("1969-12-31T23:59:59.5Z", DATETIME, "-1", id="datetime-floor-before-1970"),
    pytest.param("2024-05-13", DATETIME, epoch(2024, 5, 13), id="datetime-plain-date-midnight-utc"),
    pytest.param(1715603400, DATETIME, "1715603400", id="datetime-unix-int"),
    pytest.param("1715603400", DATETIME, "1715603400", id="datetime-unix-str"),
    pytest.param(1715603400.7, DATETIME, "1715603400", id="datetime-unix-float-floor"),
    pytest.param(1715603400000, DATETIME, "1715603400", id="datetime-unix-ms"),
    pytest.param("1715603400999", DATETIME, "1715603400", id="datetime-unix-ms-str-floor"),
    # time: seconds since midnight
    pytest.param("14:30", TIME, "52200", id="time-hh-mm"),
    pytest.param("14:30:15", TIME, "52215", id="time-hh-mm-ss"),
    pytest.param("9:05", TIME, "32700", id="time-one-digit-hour"),
    pytest.param("00:00", TIME, "0", id="time-midnight"),
    pytest.param("23:59:59", TIME, "86399", id="time-last-second"),
    pytest.param(" 14:30 ", TIME, "52200", id="time-stripped"),
    pytest.param(0, TIME, "0", id="time-int-zero"),
    pytest.param(86399, TIME, "86399", id="time-int-max"),
    pytest.param(52200.0, TIME, "52200", id="time-integral-float"),
    # html: as is
    pytest.param("<p>Hallo</p>", HTML, "<p>Hallo</p>", id="html"),
    pytest.param(" <p>x</p>\n", HTML, " <p>x</p>\n", id="html-not-stripped"),
    pytest.param("x" * 6000, HTML, "x" * 6000, id="html-at-limit"),
    # phone: E.164
    pytest.param("+49 170 1234567", PHONE, "+491701234567", id="phone-international"),
    pytest.param("+491701234567", PHONE, "+491701234567", id="phone-already-e164"),
    pytest.param("0049 170 1234567", PHONE, "+491701234567", id="phone-00-prefix"),
    pytest.param("0170 1234567", PHONE, "+491701234567", id="phone-national"),
    pytest.param("0170/123 45 67", PHONE, "+491701234567", id="phone-slash"),
    pytest.param("(0170) 123-4567", PHONE, "+491701234567", id="phone-parentheses-dash"),
    pytest.param("+49 (0)170 1234567", PHONE, "+491701234567", id="phone-bracketed-trunk-zero"),
    pytest.param("0049 (0) 170 1234567", PHONE, "+491701234567", id="phone-00-bracketed-trunk-zero"),
    pytest.param("+43.1.234.5678", PHONE, "+4312345678", id="phone-dots"),
    pytest.param("+1 (555) 123-4567", PHONE, "+15551234567", id="phone-nanp"),
    pytest.param("+49\u00a0170\u00a01234567", PHONE, "+491701234567", id="phone-no-break-space"),
]


@pytest.mark.parametrize(("value", "field_type", "expected"), ACCEPTED)
def test_accepted_values_convert_exactly(value: object, field_type: FieldType, expected: str) -> None:
    assert convert(value, field_type) == expected  # type: ignore[arg-type]


REJECTED = [
    # line
    pytest.param("a\nb", LINE, "line breaks", id="line-newline"),
    pytest.param("a\r\nb", LINE, "line breaks", id="line-crlf"),
    pytest.param("a\rb", LINE, "line breaks", id="line-cr"),
    pytest.param("a\u2028b", LINE, "line breaks", id="line-unicode-line-separator"),
    pytest.param(float("nan"), LINE, "finite", id="line-nan"),
    # paragraph, html
    pytest.param(float("inf"), PARAGRAPH, "finite", id="paragraph-inf"),
    pytest.param(42, HTML, "HTML must be text", id="html-int"),
    pytest.param(True, HTML, "HTML must be text", id="html-bool"),
    pytest.param("x" * 6001, HTML, "longer than 6000", id="html-over-limit"),
    # email
    pytest.param("anna.example.com", EMAIL, "exactly one @", id="email-no-at"),
    pytest.param("a@b@example.com", EMAIL, "exactly one @", id="email-two-at"),
    pytest.param("@example.com", EMAIL, "local part and a domain", id="email-no-local"),
    pytest.param("anna@", EMAIL, "local part and a domain", id="email-no-domain"),
    pytest.param("an na@example.com", EMAIL, "whitespace", id="email-space"),
    pytest.param("anna@example.com\x00", EMAIL, "control", id="email-control-char"),
    pytest.param("anna@localhost", EMAIL, "dotted host name", id="email-undotted-domain"),
    pytest.param("anna@example..com", EMAIL, "dotted host name", id="email-empty-label"),
    pytest.param("anna@example.com.", EMAIL, "dotted host name", id="email-trailing-dot"),
    pytest.param("a" * 250 + "@ex.com", EMAIL, "254", id="email-too-long"),
    pytest.param(42, EMAIL, "must be text", id="email-int"),
    # number
    pytest.param("4.5", NUMBER, "not a whole number", id="number-fraction-str"),
    pytest.param(4.5, NUMBER, "not a whole number", id="number-fraction-float"),
    pytest.param("1,000", NUMBER, "thousands separator", id="number-thousands-comma"),
    pytest.param("1.000,50", NUMBER, "single decimal separator", id="number-mixed-separators"),
    pytest.param("1 000", NUMBER, "not a number", id="number-space"),
    pytest.param("abc", NUMBER, "not a number", id="number-text"),
    pytest.param("1e3", NUMBER, "not a number", id="number-exponent"),
    pytest.param("1_000", NUMBER, "not a number", id="number-underscore"),
    pytest.param("\u0664\u0662", NUMBER, "not a number", id="number-non-ascii-digits"),
    pytest.param(float("nan"), NUMBER, "finite", id="number-nan"),
    pytest.param(float("-inf"), NUMBER, "finite", id="number-inf"),
    pytest.param(True, NUMBER, "boolean", id="number-bool"),
    pytest.param(INT64_MAX + 1, NUMBER, "64-bit", id="number-beyond-int64"),
    pytest.param(10**5000, NUMBER, "too large", id="number-beyond-int-str-limit"),
    # decimal
    pytest.param("1.999", DECIMAL, "more than two decimal places", id="decimal-three-places"),
    pytest.param(0.1 + 0.2, DECIMAL, "more than two decimal places", id="decimal-float-noise"),
    pytest.param("1,000", DECIMAL, "thousands separator", id="decimal-ambiguous-comma"),
    pytest.param("1,000.50", DECIMAL, "single decimal separator", id="decimal-comma-and-dot"),
    pytest.param("1,2,3", DECIMAL, "single decimal separator", id="decimal-two-commas"),
    pytest.param("€19.99", DECIMAL, "not a number", id="decimal-currency"),
    pytest.param("19.99 EUR", DECIMAL, "not a number", id="decimal-unit"),
    pytest.param(".5", DECIMAL, "not a number", id="decimal-no-whole-part"),
    pytest.param("NaN", DECIMAL, "not a number", id="decimal-nan-str"),
    pytest.param(float("nan"), DECIMAL, "finite", id="decimal-nan"),
    pytest.param(float("inf"), DECIMAL, "finite", id="decimal-inf"),
    pytest.param(False, DECIMAL, "boolean", id="decimal-bool"),
    pytest.param("92233720368547758.08", DECIMAL, "64-bit", id="decimal-beyond-int64"),
    # url
    pytest.param("www.shop.example", URL, "URL must start with http:// or https://", id="url-no-scheme"),
    pytest.param("//shop.example", URL, "URL must start with http:// or https://", id="url-scheme-relative"),
    pytest.param("ftp://shop.example", URL, "URL must start with http:// or https://", id="url-ftp"),
    pytest.param("mailto:a@b.example", URL, "URL must start with http:// or https://", id="url-mailto"),
    pytest.param("http:shop.example", URL, "URL must start with http:// or https://", id="url-no-slashes"),
    pytest.param("https://", URL, "no host", id="url-no-host"),
    pytest.param("https://shop example.com", URL, "whitespace", id="url-space"),
    pytest.param("http://[::1", URL, "not a valid URL", id="url-broken-ipv6"),
    pytest.param("http://shop.example:xx/", URL, "not a valid URL", id="url-bad-port"),
    pytest.param(42, URL, "must be text", id="url-int"),
    # date
    pytest.param("08.12.1993", DATE, "DD.MM.YYYY", id="date-german-format"),
    pytest.param("12/08/1993", DATE, "not an ISO 8601", id="date-us-format"),
    pytest.param("yesterday", DATE, "not an ISO 8601", id="date-words"),
    pytest.param("1993-13-01", DATE, "not a valid calendar date", id="date-month-13"),
    pytest.param("2023-02-29", DATE, "not a valid calendar date", id="date-no-leap-day"),
    pytest.param(755308800000, DATE, "looks like milliseconds", id="date-ms-int"),
    pytest.param("755308800000", DATE, "looks like milliseconds", id="date-ms-str"),
    pytest.param("755308800.5", DATE, "whole unix seconds", id="date-fractional-seconds"),
    pytest.param("0001-01-01", DATE, "plausible years", id="date-placeholder"),
    pytest.param(True, DATE, "boolean", id="date-bool"),
    pytest.param(float("nan"), DATE, "finite", id="date-nan"),
    # datetime
    pytest.param("2024-05-13T12:30:00", DATETIME, "without time zone is ambiguous", id="datetime-naive"),
    pytest.param("2024-05-13 12:30", DATETIME, "without time zone is ambiguous", id="datetime-naive-space"),
    pytest.param("13.05.2024 12:30", DATETIME, "not an ISO 8601", id="datetime-german-format"),
    pytest.param("20240513T123000Z", DATETIME, "not an ISO 8601", id="datetime-basic-format"),
    pytest.param("2024-05-13T12:30:00+05:30:15", DATETIME, "not an ISO 8601", id="datetime-offset-seconds"),
    pytest.param(
        "2024-05-13T25:00:00Z", DATETIME, "not a valid calendar date or time", id="datetime-hour-25"
    ),
    pytest.param(10**20, DATETIME, "plausible unix timestamp", id="datetime-absurd-number"),
    pytest.param("9" * 30, DATETIME, "plausible unix timestamp", id="datetime-absurd-digits"),
    pytest.param(-(10**13), DATETIME, "plausible years", id="datetime-ms-before-1800"),
    pytest.param(True, DATETIME, "boolean", id="datetime-bool"),
    # time
    pytest.param("24:00", TIME, "out of range", id="time-24h"),
    pytest.param("12:60", TIME, "out of range", id="time-minute-60"),
    pytest.param("12:30:60", TIME, "out of range", id="time-second-60"),
    pytest.param("2:30 PM", TIME, "AM/PM", id="time-pm"),
    pytest.param("2:30am", TIME, "AM/PM", id="time-am"),
    pytest.param("2:30 p.m.", TIME, "AM/PM", id="time-p-dot-m"),
    pytest.param("14h30", TIME, "not a time of day", id="time-h-separator"),
    pytest.param("52200", TIME, "not a time of day", id="time-digit-string-ambiguous"),
    pytest.param("14:30:00.5", TIME, "not a time of day", id="time-fraction"),
    pytest.param("14:30Z", TIME, "not a time of day", id="time-zone"),
    pytest.param(86400, TIME, "0-86399", id="time-int-too-big"),
    pytest.param(-1, TIME, "0-86399", id="time-int-negative"),
    pytest.param(1.5, TIME, "whole number", id="time-fractional-float"),
    pytest.param(True, TIME, "boolean", id="time-bool"),
    # phone
    pytest.param("170 1234567", PHONE, "country code", id="phone-no-prefix"),
    pytest.param("491701234567", PHONE, "country code", id="phone-country-without-plus"),
    pytest.param("+49 170 1234567 ext. 12", PHONE, "only digits", id="phone-extension"),
    pytest.param("+49 170 1234567 x12", PHONE, "only digits", id="phone-x-extension"),
    pytest.param("0170 CALL-ME", PHONE, "only digits", id="phone-letters"),
    pytest.param("+49+170", PHONE, "only digits", id="phone-second-plus"),
    pytest.param("+", PHONE, "only digits", id="phone-plus-only"),
    pytest.param("+12345", PHONE, "E.164", id="phone-too-short"),
    pytest.param("+1234567890123456", PHONE, "E.164", id="phone-too-long"),
    pytest.param("+0491701234567", PHONE, "E.164", id="phone-country-code-zero"),
    pytest.param(491701234567, PHONE, "must be text", id="phone-int"),
]


@pytest.mark.parametrize(("value", "field_type", "reason"), REJECTED)
def test_rejected_values_raise_with_reason(value: object, field_type: FieldType, reason: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert(value, field_type)  # type: ignore[arg-type]

    assert reason in caught.value.reason
    assert caught.value.value is value


@pytest.mark.parametrize("field_type", list(FieldType))
@pytest.mark.parametrize("value", [None, "", "   ", "\n\t "], ids=["none", "empty", "spaces", "whitespace"])
def test_no_value_gives_none_for_every_type(value: str | None, field_type: FieldType) -> None:
    assert convert(value, field_type) is None


@pytest.mark.parametrize("field_type", list(FieldType))
@pytest.mark.parametrize("value", [["a", "b"], [], ("a",)], ids=["list", "empty-list", "tuple"])
def test_lists_are_rejected_for_every_type(value: list[str], field_type: FieldType) -> None:
    with pytest.raises(ConversionError, match="a list cannot be stored in a single field"):
        convert(value, field_type)


@pytest.mark.parametrize("field_type", list(FieldType))
def test_unsupported_types_are_rejected(field_type: FieldType) -> None:
    with pytest.raises(ConversionError, match="unsupported value type dict"):
        convert({"a": 1}, field_type)  # type: ignore[arg-type]


@pytest.mark.parametrize("field_type", [NUMBER, DECIMAL, DATE, DATETIME, TIME, EMAIL, URL, HTML, PHONE])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected_outside_text_fields(value: bool, field_type: FieldType) -> None:
    with pytest.raises(ConversionError):
        convert(value, field_type)


def test_field_type_values_are_the_mapping_names() -> None:
    assert [t.value for t in FieldType] == [
        "line",
        "paragraph",
        "email",
        "number",
        "decimal",
        "url",
        "date",
        "datetime",
        "time",
        "html",
        "phone",
    ]
    assert FieldType("decimal") is DECIMAL


# --- options ---------------------------------------------------------------------------------------------

OPTION_CASES = [
    pytest.param(
        ConversionOptions(default_country="43"), "0664 1234567", PHONE, "+436641234567", id="austria"
    ),
    pytest.param(
        ConversionOptions(default_country="1", national_prefix=""),
        "(555) 123-4567",
        PHONE,
        "+15551234567",
        id="nanp-no-trunk-prefix",
    ),
    pytest.param(
        ConversionOptions(default_country="39", national_prefix=""),
        "06 1234 5678",
        PHONE,
        "+390612345678",
        id="italy-keeps-leading-zero",
    ),
    pytest.param(
        ConversionOptions(default_country="39", national_prefix=""),
        "0049 170 1234567",
        PHONE,
        "+491701234567",
        id="international-prefix-wins-over-empty-national-prefix",
    ),
    pytest.param(ConversionOptions(boolean_text=("ja", "nein")), False, LINE, "nein", id="boolean-text"),
    pytest.param(ConversionOptions(max_line_length=4), "Anna", LINE, "Anna", id="line-at-limit"),
    pytest.param(
        ConversionOptions(max_html_length=None), "x" * 10_000, HTML, "x" * 10_000, id="html-unlimited"
    ),
    pytest.param(
        ConversionOptions(year_range=(1900, 2100)), "1900-01-01", DATE, epoch(1900, 1, 1), id="year-lo"
    ),
    pytest.param(
        ConversionOptions(year_range=(1900, 2100)),
        "2100-12-31T23:59:59Z",
        DATETIME,
        epoch(2100, 12, 31, 23, 59, 59),
        id="year-hi",
    ),
]


@pytest.mark.parametrize(("options", "value", "field_type", "expected"), OPTION_CASES)
def test_options_change_conversion(
    options: ConversionOptions, value: object, field_type: FieldType, expected: str
) -> None:
    assert convert(value, field_type, options) == expected  # type: ignore[arg-type]


OPTION_REJECTIONS = [
    pytest.param(
        ConversionOptions(boolean_text=None), True, LINE, "boolean_text is None", id="no-boolean-text"
    ),
    pytest.param(ConversionOptions(max_line_length=3), "Anna", LINE, "longer than 3", id="line-limit"),
    pytest.param(
        ConversionOptions(max_paragraph_length=3), "a\nbc", PARAGRAPH, "longer than 3", id="para-limit"
    ),
    pytest.param(
        ConversionOptions(year_range=(1900, 2100)), "1899-12-31", DATE, "1900-2100", id="year-too-early"
    ),
    pytest.param(
        ConversionOptions(year_range=(1900, 2100)),
        "2101-01-01T00:00:00Z",
        DATETIME,
        "1900-2100",
        id="year-too-late",
    ),
]


@pytest.mark.parametrize(("options", "value", "field_type", "reason"), OPTION_REJECTIONS)
def test_options_can_reject(
    options: ConversionOptions, value: object, field_type: FieldType, reason: str
) -> None:
    with pytest.raises(ConversionError) as caught:
        convert(value, field_type, options)  # type: ignore[arg-type]

    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"default_country": "049"}, id="country-leading-zero"),
        pytest.param({"default_country": "+49"}, id="country-plus"),
        pytest.param({"default_country": ""}, id="country-empty"),
        pytest.param({"default_country": "1234"}, id="country-too-long"),
        pytest.param({"national_prefix": "x"}, id="national-prefix-letter"),
        pytest.param({"boolean_text": ("a", "a")}, id="boolean-text-same"),
        pytest.param({"boolean_text": ("", "x")}, id="boolean-text-empty"),
        pytest.param({"boolean_text": ("a\nb", "c")}, id="boolean-text-line-break"),
        pytest.param({"max_line_length": 0}, id="line-limit-zero"),
        pytest.param({"max_html_length": -1}, id="html-limit-negative"),
        pytest.param({"year_range": (2000, 1999)}, id="years-descending"),
        pytest.param({"year_range": (0, 10)}, id="year-zero"),
        pytest.param({"year_range": (1, 9999)}, id="year-9999"),
    ],
)
def test_invalid_options_are_refused_at_construction(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValueError is the documented contract
        ConversionOptions(**overrides)  # type: ignore[arg-type]


def test_options_are_frozen_and_keyword_only() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_OPTIONS.default_country = "1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ConversionOptions("1")  # type: ignore[call-arg]


# --- the error -------------------------------------------------------------------------------------------


def test_error_carries_reason_and_value_and_reads_well() -> None:
    # Given a value a URL field cannot take
    # When it is converted
    with pytest.raises(ConversionError) as caught:
        convert("www.shop.example", URL)

    # Then the error says why and what, and is a ValueError for generic handlers
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.reason == "URL must start with http:// or https://"
    assert error.value == "www.shop.example"
    assert str(error) == "URL must start with http:// or https://: 'www.shop.example'"


def test_error_survives_pickling() -> None:
    error = ConversionError("not a number", "abc")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object

    assert (copy.reason, copy.value, str(copy)) == (error.reason, error.value, str(error))


def test_error_text_is_short_and_never_fails() -> None:
    long_text = ConversionError("too long", "x" * 1000)
    huge_int = ConversionError("too large", 10**5000)

    assert len(str(long_text)) < 100
    assert str(long_text).endswith("...")
    assert str(huge_int) == "too large: <int too large to show>"


# --- dependency rule ---------------------------------------------------------------------------------------


def test_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(convert_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert {name.split(".")[0] for name in imported} <= sys.stdlib_module_names
