"""Properties of value conversion that hold for every input, checked with hypothesis."""

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import hypothesis
import hypothesis.strategies as st
import pytest

from ktsync.worker.sync.convert import ConversionError, FieldType, convert

given = hypothesis.given

E164 = re.compile(r"\+[1-9][0-9]{5,14}")
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"

property_values = st.one_of(
    st.none(),
    st.text(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.text(), max_size=3),
    st.from_regex(r"\s*[+-]?[0-9]{1,14}([.,][0-9]{1,4})?\s*", fullmatch=True),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
        fullmatch=True,
    ),
    st.from_regex(r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?", fullmatch=True),
    st.from_regex(r"(\+|00|0)[0-9 ()/.-]{4,20}", fullmatch=True),
)


@given(value=property_values, field_type=st.sampled_from(FieldType))
def test_convert_returns_a_string_or_none_or_raises_conversion_error(
    value: object, field_type: FieldType
) -> None:
    try:
        outcome: object = convert(value, field_type)  # type: ignore[arg-type]
    except ConversionError as error:
        outcome = error

    if isinstance(outcome, ConversionError):
        assert outcome.reason
        assert str(outcome)
    else:
        assert outcome is None or isinstance(outcome, str)


@given(value=property_values)
def test_a_line_never_holds_a_line_break(value: object) -> None:
    try:
        result = convert(value, FieldType.LINE)  # type: ignore[arg-type]
    except ConversionError:
        return
    assert result is None or not any(char in LINE_BREAKS for char in result)


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_decimal_with_two_places_scales_by_100_from_text_and_float(amount: Decimal) -> None:
    expected = str(int(amount * 100))

    assert convert(str(amount), FieldType.DECIMAL) == expected
    assert convert(str(amount).replace(".", ","), FieldType.DECIMAL) == expected
    assert convert(float(str(amount)), FieldType.DECIMAL) == expected


@given(st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_decimal_with_a_third_significant_place_is_never_rounded(amount: Decimal) -> None:
    if amount == amount.quantize(Decimal("0.01")):
        return
    with pytest.raises(ConversionError, match="more than two decimal places"):
        convert(str(amount), FieldType.DECIMAL)


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_number_round_trips_every_int64(number: int) -> None:
    assert convert(number, FieldType.NUMBER) == str(number)
    assert convert(str(number), FieldType.NUMBER) == str(number)


@given(st.text())
def test_phone_normalization_is_idempotent_and_yields_e164(text: str) -> None:
    try:
        once = convert(text, FieldType.PHONE)
    except ConversionError:
        return
    if once is None:
        return
    assert E164.fullmatch(once)
    assert convert(once, FieldType.PHONE) == once


@given(
    country=st.integers(min_value=1, max_value=999),
    subscriber=st.from_regex(r"[1-9][0-9]{4,10}", fullmatch=True),
    separator=st.sampled_from([" ", "-", "/", ".", ""]),
    prefix=st.sampled_from(["+", "00"]),
)
def test_formatted_international_numbers_normalize_to_their_digits(
    country: int, subscriber: str, separator: str, prefix: str
) -> None:
    # Given a number written with a prefix and separators between digit groups
    digits = f"{country}{subscriber}"
    written = prefix + separator.join([str(country), subscriber[:3], subscriber[3:]])

    # When it is converted, Then only the digits remain, behind a single +
    if len(digits) <= 15:
        assert convert(written, FieldType.PHONE) == "+" + digits


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2199, 12, 31)))
def test_date_is_midnight_utc_of_the_calendar_date(day: date) -> None:
    result = convert(day.isoformat(), FieldType.DATE)

    assert result == str(calendar.timegm(day.timetuple()))
    assert datetime.fromtimestamp(int(result), UTC).date() == day


@given(
    st.datetimes(min_value=datetime(1800, 1, 2), max_value=datetime(2199, 12, 30)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_datetime_with_zone_is_its_instant_in_whole_seconds(local: datetime, offset_minutes: int) -> None:
    moment = local.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))

    result = convert(moment.isoformat(), FieldType.DATETIME)

    assert result == str(calendar.timegm(moment.astimezone(UTC).timetuple()))  # timetuple drops sub-seconds


@given(st.datetimes(min_value=datetime(1800, 1, 2), max_value=datetime(2199, 12, 30)))
def test_datetime_without_zone_is_always_rejected(local: datetime) -> None:
    with pytest.raises(ConversionError, match="without time zone"):
        convert(local.isoformat(), FieldType.DATETIME)


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_time_of_day_is_seconds_since_midnight(hours: int, minutes: int, seconds: int) -> None:
    expected = str(hours * 3600 + minutes * 60 + seconds)

    assert convert(f"{hours:02}:{minutes:02}:{seconds:02}", FieldType.TIME) == expected
    assert convert(int(expected), FieldType.TIME) == expected
