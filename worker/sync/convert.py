"""Convert one CRM property value into the string a KlickTipp data field of a given type accepts.

Pure and standard-library only. `convert` returns the wire string, `None` for "no value" (None, or a
string that is empty after stripping), and raises `ConversionError` for anything it cannot convert
faithfully: it never rounds, guesses a time zone or drops part of a value. Wire formats follow
KLICKTIPP_API.md §6: decimals scaled by 100, dates and date-times as unix seconds, times as seconds
since midnight, URLs with an http(s) scheme, phone numbers as E.164 `+<country><number>`.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias
from urllib.parse import urlsplit

PropertyValue: TypeAlias = str | int | float | bool | list[str] | None
Scalar: TypeAlias = str | int | float | bool

MILLISECONDS_THRESHOLD = 10**11
"""Epoch values at or above this (in magnitude) are milliseconds: as seconds they would be after year 5000."""

_WIRE_INT_MAX = 2**63 - 1  # KlickTipp's storage is unknown; beyond int64 nothing is stored faithfully
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")  # everything str.splitlines splits on
_PLAIN_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"  # date and time
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"  # optional zone
)
_DOTTED_DATE = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{2,4}")
_CLOCK = re.compile(r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})(?::(?P<s>[0-9]{2}))?")
_TWELVE_HOUR = re.compile(r".*[0-9]\s*[ap]\.?m\.?", re.IGNORECASE)
_PHONE_SEPARATORS = re.compile(r"[\s\-./()]")
_PHONE_COMPACT = re.compile(r"\+?[0-9]+")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")


class FieldType(StrEnum):
    """The KlickTipp data field types (the API cannot report a field's type; the mapping names it)."""

    LINE = "line"
    PARAGRAPH = "paragraph"
    EMAIL = "email"
    NUMBER = "number"
    DECIMAL = "decimal"
    URL = "url"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    HTML = "html"
    PHONE = "phone"


class ConversionError(ValueError):
    """A value that cannot be stored faithfully in a field of the requested type.

    `value` is the offending input as given, `reason` a short human explanation. The caller adds the
    property and field names. `args` is `(reason, value)`, so the error pickles and re-raises intact.
    """

    def __init__(self, reason: str, value: object) -> None:
        super().__init__(reason, value)
        self.reason = reason
        self.value = value

    def __str__(self) -> str:
        try:
            shown = repr(self.value)
        except ValueError:  # e.g. an int beyond Python's 4300-digit conversion limit
            shown = f"<{type(self.value).__name__} too large to show>"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{self.reason}: {shown}"


@dataclass(frozen=True, kw_only=True)
class ConversionOptions:
    """Account-level choices for conversion; the defaults suit a German KlickTipp account.

    * `default_country`: calling code for national phone numbers (`0170 1234567` -> `+491701234567`).
    * `national_prefix`: trunk prefix that marks a national phone number and is dropped ("0" for DE, AT,
      CH, FR, GB, NL...). Use "" where the national number has no trunk prefix or keeps its 0 (US, IT):
      then every number without `+`/`00` is national.
    * `boolean_text`: how Line and Paragraph fields spell True and False; None rejects booleans there.
      The default matches how HubSpot and Zoho render booleans as text.
    * `max_*_length`: limits in characters, None for none. KlickTipp documents none; 6000 for HTML
      follows a field note (L) in KLICKTIPP_API.md §6.2.
    * `year_range`: Date and Date & time values outside these years (inclusive) are rejected as
      implausible; this catches milliseconds read as seconds and placeholder dates such as 0001-01-01.
    """

    default_country: str = "49"
    national_prefix: str = "0"
    boolean_text: tuple[str, str] | None = ("true", "false")
    max_line_length: int | None = None
    max_paragraph_length: int | None = None
    max_html_length: int | None = 6000
    year_range: tuple[int, int] = (1800, 2199)

    def __post_init__(self) -> None:
        if not _COUNTRY_CODE.fullmatch(self.default_country):
            raise ValueError(
                f"default_country must be 1-3 digits without a leading 0: {self.default_country!r}"
            )
        if not self.national_prefix.isdigit() and self.national_prefix != "":
            raise ValueError(f"national_prefix must be digits or empty: {self.national_prefix!r}")
        if self.boolean_text is not None and (
            len(set(self.boolean_text)) != 2
            or not all(t.strip() and t.isprintable() for t in self.boolean_text)
        ):
            raise ValueError(f"boolean_text must be two different one-line texts: {self.boolean_text!r}")
        for limit in (self.max_line_length, self.max_paragraph_length, self.max_html_length):
            if limit is not None and limit < 1:
                raise ValueError(f"length limits must be positive or None: {limit!r}")
        if not 1 <= self.year_range[0] <= self.year_range[1] <= 9998:
            raise ValueError(f"year_range must be ascending years within 1..9998: {self.year_range!r}")


DEFAULT_OPTIONS = ConversionOptions()


def convert(
    value: PropertyValue, field_type: FieldType, options: ConversionOptions = DEFAULT_OPTIONS
) -> str | None:
    """Return the KlickTipp wire string for `value` in a `field_type` field, or None for "no value".

    None and strings that are empty after stripping give None (the caller then leaves the field out).
    Lists, booleans in numeric or temporal fields, and anything else that cannot be stored faithfully
    raise ConversionError.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _CONVERTERS[field_type](_as_scalar(value), options)


# --- shared helpers ---------------------------------------------------------------------------------


def _as_scalar(value: object) -> Scalar:
    if isinstance(value, list | tuple | set | frozenset):
        raise ConversionError("a list cannot be stored in a single field", value)
    if isinstance(value, str | int | float):  # bool is an int
        return value
    raise ConversionError(f"unsupported value type {type(value).__name__}", value)


def _require_text(value: Scalar, what: str) -> str:
    if not isinstance(value, str):
        raise ConversionError(f"{what} must be text, not {type(value).__name__}", value)
    return value.strip()


def _check_length(text: str, limit: int | None, value: Scalar) -> str:
    if limit is not None and len(text) > limit:
        raise ConversionError(f"text is longer than {limit} characters", value)
    return text


def _reject_bool(value: Scalar, what: str) -> None:
    if isinstance(value, bool):
        raise ConversionError(f"a boolean is not {what}", value)


def _finite_decimal(value: int | float) -> Decimal:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConversionError("not a finite number", value)
    try:
        return Decimal(repr(value))  # repr is the shortest exact round-trip form: 19.99 stays 19.99
    except ValueError as exc:  # ints beyond Python's 4300-digit conversion limit
        raise ConversionError("number is too large", value) from exc


# --- text types ---------------------------------------------------------------------------------------


def _plain_text(value: Scalar, options: ConversionOptions) -> str:
    if isinstance(value, bool):
        if options.boolean_text is None:
            raise ConversionError("a boolean has no agreed text form (boolean_text is None)", value)
        return options.boolean_text[0] if value else options.boolean_text[1]
    if isinstance(value, int | float):
        return format(_finite_decimal(value), "f")
    return value.strip()


def _line(value: Scalar, options: ConversionOptions) -> str:
    text = _plain_text(value, options)
    if any(char in _LINE_BREAKS for char in text):
        raise ConversionError("a Line field cannot hold line breaks (use a Paragraph field)", value)
    return _check_length(text, options.max_line_length, value)


def _paragraph(value: Scalar, options: ConversionOptions) -> str:
    text = _plain_text(value, options).replace("\r\n", "\n").replace("\r", "\n")
    return _check_length(text, options.max_paragraph_length, value)


def _html(value: Scalar, options: ConversionOptions) -> str:
    if not isinstance(value, str):
        raise ConversionError(f"HTML must be text, not {type(value).__name__}", value)
    return _check_length(value, options.max_html_length, value)


def _email(value: Scalar, _options: ConversionOptions) -> str:
    text = _require_text(value, "an e-mail address")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ConversionError("an e-mail address cannot contain whitespace or control characters", value)
    if text.count("@") != 1:
        raise ConversionError("an e-mail address must contain exactly one @", value)
    local, _, domain = text.partition("@")
    if not local or not domain:
        raise ConversionError("an e-mail address needs a local part and a domain", value)
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise ConversionError("the e-mail domain is not a dotted host name", value)
    if len(text) > 254:
        raise ConversionError("an e-mail address cannot be longer than 254 characters", value)
    return f"{local}@{domain.lower()}"


def _url(value: Scalar, _options: ConversionOptions) -> str:
    text = _require_text(value, "a URL")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ConversionError("a URL cannot contain whitespace or control characters", value)
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConversionError(f"not a valid URL ({exc})", value) from exc
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not text[len(scheme) :].startswith("://"):
        raise ConversionError("URL must start with http:// or https://", value)
    if not host:
        raise ConversionError("URL has no host", value)
    return scheme + text[len(scheme) :]


def _phone(value: Scalar, options: ConversionOptions) -> str:
    text = _require_text(value, "a phone number (a number loses its leading + or 0)")
    if text.startswith(("+", "00")):
        text = text.replace("(0)", "", 1)  # "+49 (0)170 ...": the bracketed trunk 0 is not dialled
    compact = _PHONE_SEPARATORS.sub("", text)
    if not _PHONE_COMPACT.fullmatch(compact):
        raise ConversionError("a phone number may hold only digits, a leading + and spaces - . / ( )", value)
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif compact.startswith(options.national_prefix):
        digits = options.default_country + compact[len(options.national_prefix) :]
    else:
        raise ConversionError("a phone number needs a country code (+ or 00) or a national prefix", value)
    if not 6 <= len(digits) <= 15 or digits.startswith("0"):
        raise ConversionError(
            "not an E.164 number (+, a country code not starting with 0, 6-15 digits)", value
        )
    return "+" + digits


# --- numeric types -------------------------------------------------------------------------------------


def _decimal_parts(value: Scalar) -> tuple[bool, str, str]:
    """Split a number into (negative, whole digits, fraction digits) without any float rounding."""
    _reject_bool(value, "a number")
    text = format(_finite_decimal(value), "f") if isinstance(value, int | float) else value.strip()
    if "," in text:
        if text.count(",") != 1 or "." in text:
            raise ConversionError("',' is accepted only as the single decimal separator", value)
        whole, _, fraction = text.partition(",")
        if len(fraction) == 3:
            raise ConversionError("ambiguous: ',' before three digits may be a thousands separator", value)
        text = f"{whole}.{fraction}"
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        raise ConversionError("not a number", value)
    return match["sign"] == "-", match["whole"], match["fraction"] or ""


def _wire_int(negative: bool, digits: str, value: Scalar) -> str:
    digits = digits.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > _WIRE_INT_MAX:  # length first: int() of huge strings is slow
        raise ConversionError("number is outside the 64-bit integer range", value)
    return str(-int(digits) if negative else int(digits))


def _number(value: Scalar, _options: ConversionOptions) -> str:
    # KlickTipp's guide says "no sign" for Number [S27]; negative values are kept and left to KlickTipp.
    negative, whole, fraction = _decimal_parts(value)
    if fraction.rstrip("0"):
        raise ConversionError("not a whole number", value)
    return _wire_int(negative, whole, value)


def _decimal(value: Scalar, _options: ConversionOptions) -> str:
    negative, whole, fraction = _decimal_parts(value)
    cents = fraction.rstrip("0")
    if len(cents) > 2:
        raise ConversionError(
            "more than two decimal places; KlickTipp stores hundredths, refusing to round", value
        )
    return _wire_int(negative, whole + cents.ljust(2, "0"), value)


# --- temporal types -------------------------------------------------------------------------------------


def _temporal(value: Scalar) -> Decimal | datetime | date:
    """Parse epoch numbers (as Decimal, unit undecided), ISO dates and ISO date-times (maybe naive)."""
    _reject_bool(value, "a date or time")
    if isinstance(value, int | float):
        return _finite_decimal(value)
    text = value.strip()
    if _PLAIN_DECIMAL.fullmatch(text):
        if len(text) > 24:
            raise ConversionError("not a plausible unix timestamp", value)
        return Decimal(text)
    upper = text.upper()  # RFC 3339 allows a lower-case t and z
    try:
        if _ISO_DATE.fullmatch(upper):
            return date.fromisoformat(upper)
        if _ISO_DATETIME.fullmatch(upper):
            return datetime.fromisoformat(upper)
    except ValueError as exc:
        raise ConversionError(f"not a valid calendar date or time ({exc})", value) from exc
    if _DOTTED_DATE.fullmatch(text):
        raise ConversionError("DD.MM.YYYY is not accepted; use ISO 8601 YYYY-MM-DD", value)
    raise ConversionError("not an ISO 8601 date or date-time, nor unix seconds", value)


def _require_zone(moment: datetime, value: object) -> datetime:
    if moment.utcoffset() is None:
        raise ConversionError("date-time without time zone is ambiguous", value)
    return moment


def _epoch_seconds(number: Decimal, value: object) -> Decimal:
    seconds = number / 1000 if abs(number) >= MILLISECONDS_THRESHOLD else number
    if abs(seconds) >= MILLISECONDS_THRESHOLD:
        raise ConversionError("not a plausible unix timestamp", value)
    return seconds


def _midnight_utc(day: date) -> int:
    return (datetime(day.year, day.month, day.day, tzinfo=UTC) - _EPOCH) // _SECOND


def _plausible(seconds: int, options: ConversionOptions, value: Scalar) -> str:
    first, last = options.year_range
    if not _midnight_utc(date(first, 1, 1)) <= seconds < _midnight_utc(date(last + 1, 1, 1)):
        raise ConversionError(f"outside the plausible years {first}-{last}", value)
    return str(seconds)


def _date(value: Scalar, options: ConversionOptions) -> str:
    # A date-time contributes its calendar date as written (the date in its own zone), at 00:00 UTC;
    # the zone cannot change that date, so a date-time without one is accepted here.
    parsed = _temporal(value)
    if not isinstance(parsed, Decimal):
        return _plausible(_midnight_utc(parsed), options, value)
    if abs(parsed) >= MILLISECONDS_THRESHOLD:
        raise ConversionError("looks like milliseconds; a Date field takes unix seconds", value)
    if parsed != parsed.to_integral_value():
        raise ConversionError("a Date timestamp must be whole unix seconds", value)
    return _plausible(int(parsed), options, value)


def _datetime(value: Scalar, options: ConversionOptions) -> str:
    # KlickTipp stores whole seconds: sub-second parts are floored, as any clock display would.
    parsed = _temporal(value)
    if isinstance(parsed, Decimal):
        return _plausible(math.floor(_epoch_seconds(parsed, value)), options, value)
    if isinstance(parsed, datetime):
        moment = _require_zone(parsed, value)
        return _plausible((moment - _EPOCH) // _SECOND, options, value)
    return _plausible(_midnight_utc(parsed), options, value)


def _time(value: Scalar, _options: ConversionOptions) -> str:
    _reject_bool(value, "a time of day")
    if isinstance(value, int | float):
        seconds = _finite_decimal(value)
        if seconds != seconds.to_integral_value() or not 0 <= seconds <= 86399:
            raise ConversionError("seconds since midnight must be a whole number 0-86399", value)
        return str(int(seconds))
    text = value.strip()
    match = _CLOCK.fullmatch(text)
    if match is None:
        if _TWELVE_HOUR.fullmatch(text):
            raise ConversionError("12-hour clock (AM/PM) is not accepted; use 24-hour HH:MM", value)
        raise ConversionError("not a time of day (HH:MM or HH:MM:SS)", value)
    hours, minutes, secs = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    if hours > 23 or minutes > 59 or secs > 59:
        raise ConversionError("time of day out of range (00:00:00-23:59:59)", value)
    return str(hours * 3600 + minutes * 60 + secs)


_CONVERTERS: Mapping[FieldType, Callable[[Scalar, ConversionOptions], str]] = {
    FieldType.LINE: _line,
    FieldType.PARAGRAPH: _paragraph,
    FieldType.EMAIL: _email,
    FieldType.NUMBER: _number,
    FieldType.DECIMAL: _decimal,
    FieldType.URL: _url,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.TIME: _time,
    FieldType.HTML: _html,
    FieldType.PHONE: _phone,
}
