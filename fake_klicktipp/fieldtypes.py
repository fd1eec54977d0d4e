"""Pure validation and normalization of data-field values and SMS numbers, by KlickTipp field type.

Input formats (KLICKTIPP_API.md §6.2): number and decimal are digit strings (decimal is the value
times 100), date and datetime are unix seconds (milliseconds are refused), time is seconds since
midnight (0-86399), url needs http:// or https://, line has no line breaks, phone values come back
normalized from ``+49…`` to ``0049…``. An empty value always clears the field. Values are returned
as the strings the fake stores and answers with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Literal, get_args

FieldType = Literal[
    "line", "paragraph", "email", "number", "decimal", "url", "date", "datetime", "time", "html", "phone"
]
FIELD_TYPES: Final[frozenset[str]] = frozenset(get_args(FieldType))

_DIGITS = re.compile(r"\d+")
_SIGNED_DIGITS = re.compile(r"-?\d+")
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-/().]")
_PHONE = re.compile(r"(\+|00)?\d{3,}")
_SMS = re.compile(r"(\+|00)[1-9]\d{5,14}")
_MAX_UNIX_SECONDS: Final = 99_999_999_999  # 13-digit values are milliseconds
_SECONDS_PER_DAY: Final = 86_400


class InvalidValue(ValueError):
    """A value does not fit its field type; ``reason`` is the human-readable rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def as_text(raw: object) -> str:
    """The string form of a submitted scalar (numbers allowed, booleans and containers not)."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, float):
        raise InvalidValue("must be an integer value")
    raise InvalidValue("must be a string")


def normalize_phone(text: str) -> str:
    """``+49 170 123-4567`` → ``00491701234567``; raises InvalidValue for non-phone content."""
    compact = _PHONE_SEPARATORS.sub("", text)
    if not _PHONE.fullmatch(compact):
        raise InvalidValue("must be a phone number")
    return "00" + compact[1:] if compact.startswith("+") else compact


def normalize_sms_number(text: str) -> str:
    """An SMS number in international format (``+49…`` or ``0049…``), stored as ``0049…``."""
    compact = _PHONE_SEPARATORS.sub("", text)
    if not _SMS.fullmatch(compact):
        raise InvalidValue("must be a phone number in international format")
    return "00" + compact[1:] if compact.startswith("+") else compact


def _integer(text: str, *, signed: bool, reason: str) -> int:
    pattern = _SIGNED_DIGITS if signed else _DIGITS
    if not pattern.fullmatch(text):
        raise InvalidValue(reason)
    return int(text)


def _timestamp(text: str) -> str:
    seconds = _integer(text, signed=True, reason="must be a unix timestamp in seconds")
    if abs(seconds) > _MAX_UNIX_SECONDS:
        raise InvalidValue("must be a unix timestamp in seconds, not milliseconds")
    return str(seconds)


def _time_of_day(text: str) -> str:
    seconds = _integer(text, signed=False, reason="must be seconds since midnight (0-86399)")
    if seconds >= _SECONDS_PER_DAY:
        raise InvalidValue("must be seconds since midnight (0-86399)")
    return str(seconds)


def _line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise InvalidValue("must not contain line breaks")
    return text


def _email(text: str) -> str:
    if not _EMAIL.fullmatch(text.strip()):
        raise InvalidValue("must be a valid email address")
    return text.strip()


def _url(text: str) -> str:
    if not _URL.fullmatch(text.strip()):
        raise InvalidValue("must be a URL starting with http:// or https://")
    return text.strip()


def _number(text: str) -> str:
    return str(_integer(text.strip(), signed=False, reason="must be a numeric value"))


def _decimal(text: str) -> str:
    reason = "must be an integer value (decimal numbers are sent multiplied by 100)"
    return str(_integer(text.strip(), signed=False, reason=reason))


def _verbatim(text: str) -> str:
    return text


_NORMALIZERS: Final[dict[str, Callable[[str], str]]] = {
    "line": _line,
    "paragraph": _verbatim,
    "html": _verbatim,
    "email": _email,
    "number": _number,
    "decimal": _decimal,
    "url": _url,
    "date": lambda text: _timestamp(text.strip()),
    "datetime": lambda text: _timestamp(text.strip()),
    "time": lambda text: _time_of_day(text.strip()),
    "phone": normalize_phone,
}


def normalize_value(field_type: FieldType, raw: object) -> str:
    """The stored string for ``raw`` in a field of ``field_type``; raises InvalidValue."""
    text = as_text(raw)
    if text == "":
        return ""
    return _NORMALIZERS[field_type](text)
