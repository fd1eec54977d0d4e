"""The field rules of contract v1: each custom field validates one value and declares its JSON Schema.

``ktsync.core.contract`` builds the message schemas from these; ``ktsync.core.contract_schema`` publishes each
``json_schema`` as it stands, so a rule and its published form are written side by side, once.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate

from ktsync.core.contract_patterns import (
    DATE_TIME_PATTERN,
    DECIMAL_PATTERN,
    EMAIL_PATTERN,
    IDENTIFIER_PATTERN,
    LOCAL_DATE_TIME_PATTERN,
    MAX_IDENTIFIER,
    unix_time_pattern,
)

CONTRACT_VERSION = 1
MILLISECONDS_THRESHOLD = 10**11  # a Unix timestamp this large is in milliseconds (year 5138 in seconds)
LATEST_PLAUSIBLE = 7258118400  # 2200-01-01: later "times" are unit mistakes, not events
MAX_PROPERTIES = 500

PropertyValue = str | int | float | bool | None | list[str]


UNIX_TIME_PATTERN = unix_time_pattern(
    seconds_below=LATEST_PLAUSIBLE, milliseconds_from=MILLISECONDS_THRESHOLD
)
_UNIX_TIME = re.compile(UNIX_TIME_PATTERN)
_DECIMAL = re.compile(DECIMAL_PATTERN)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)
_LOCAL_DATE_TIME = re.compile(LOCAL_DATE_TIME_PATTERN)
_EPOCH = datetime(1970, 1, 1)
_TIMESTAMP_ERROR = "must be an ISO 8601 date-time with a zone or a Unix timestamp"


def parse_timestamp(value: object) -> float:
    """ISO 8601 with a zone, or Unix seconds / milliseconds (a number or its decimal string), to Unix seconds.

    Strings follow the patterns of ``ktsync.core.contract_patterns`` (those the JSON Schema publishes), so the
    result does not depend on the Python version's ``datetime.fromisoformat``.
    """
    if isinstance(value, bool):
        raise ValueError(_TIMESTAMP_ERROR)
    if isinstance(value, int | float):
        return _unix_seconds(value)
    if isinstance(value, str):
        return _text_seconds(value)
    raise ValueError(_TIMESTAMP_ERROR)


def _unix_seconds(number: float) -> float:
    # Compared before any conversion: float() of a huge integer overflows.
    if (isinstance(number, float) and not math.isfinite(number)) or number < 0:
        raise ValueError("must be a non-negative, finite Unix timestamp")
    if number < LATEST_PLAUSIBLE:
        return float(number)
    if MILLISECONDS_THRESHOLD <= number < LATEST_PLAUSIBLE * 1000:
        return float(number) / 1000
    raise ValueError(f"{number!r} is not a plausible Unix timestamp (seconds or milliseconds)")


def _text_seconds(text: str) -> float:
    if _UNIX_TIME.match(text):
        number = float(text.strip())  # float() strips less whitespace than str.strip()
        return number / 1000 if number >= MILLISECONDS_THRESHOLD else number
    if _DECIMAL.match(text):
        raise ValueError(f"{text!r} is not a plausible Unix timestamp (seconds or milliseconds)")
    parts = _DATE_TIME.match(text)
    if parts is None:
        if _LOCAL_DATE_TIME.match(text):
            raise ValueError(f"{text!r} has no time zone (add Z or an offset like +01:00)")
        raise ValueError(f"{text!r} is not an ISO 8601 date-time")
    year, _, month, day, hour, _, minute, second, fraction, zone = parts.groups()
    clock = int(hour), int(minute or 0), int(second or 0), int(((fraction or "") + "000000")[:6])
    try:
        local = datetime(int(year), int(month), int(day), *clock)
    except ValueError:
        raise ValueError(f"{text!r}: {year}-{month}-{day} is not a date") from None
    return (local - _EPOCH - _zone_offset(zone)).total_seconds()


def _zone_offset(zone: str) -> timedelta:
    digits = zone[1:].replace(":", "")
    if not digits:  # Z
        return timedelta(0)
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return -offset if zone.startswith("-") else offset


class Timestamp(fields.Field[float]):
    """``occurred_at``: see :func:`parse_timestamp`."""

    json_schema: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"type": "number", "minimum": 0, "exclusiveMaximum": LATEST_PLAUSIBLE},
            {
                "type": "number",
                "minimum": MILLISECONDS_THRESHOLD,
                "exclusiveMaximum": LATEST_PLAUSIBLE * 1000,
            },
            {"type": "string", "pattern": DATE_TIME_PATTERN},
            {"type": "string", "pattern": UNIX_TIME_PATTERN},
        ]
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


_SMALLEST_ID, _LARGEST_ID = -(10 ** (MAX_IDENTIFIER - 1) - 1), 10**MAX_IDENTIFIER - 1  # "-99…9", "99…9"


class Identifier(fields.Field[str]):
    """1 to 128 characters, surrounding whitespace ignored; an integer becomes its decimal string.

    JSON has one number type, so ``501.0`` is the integer 501 (as in JSON Schema).
    """

    json_schema: ClassVar[dict[str, Any]] = {
        "type": ["string", "integer"],
        "pattern": IDENTIFIER_PATTERN,
        "minimum": _SMALLEST_ID,
        "maximum": _LARGEST_ID,
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("must be a string or an integer")
        if isinstance(value, int):
            if not _SMALLEST_ID <= value <= _LARGEST_ID:
                raise ValidationError(f"must be 1 to {MAX_IDENTIFIER} characters")
            return str(value)
        text = value.strip()
        if not 0 < len(text) <= MAX_IDENTIFIER:
            raise ValidationError(f"must be 1 to {MAX_IDENTIFIER} characters")
        return text


_MAX_PROPERTY_NAME = 100


class Properties(fields.Field[dict[str, PropertyValue]]):
    """CRM property name -> string, number, boolean, null or list of strings."""

    json_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "maxProperties": MAX_PROPERTIES,
        "propertyNames": {"type": "string", "minLength": 1, "maxLength": _MAX_PROPERTY_NAME},
        "additionalProperties": {
            "anyOf": [
                {"type": ["string", "number", "boolean", "null"]},
                {"type": "array", "items": {"type": "string"}},
            ]
        },
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("must be an object mapping property names to values")
        if len(value) > MAX_PROPERTIES:
            raise ValidationError(f"at most {MAX_PROPERTIES} properties")
        errors = {name: reason for name, item in value.items() if (reason := _property_problem(name, item))}
        if errors:
            raise ValidationError(errors)
        return dict(value)


def _property_problem(name: object, item: object) -> str | None:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_PROPERTY_NAME:
        return f"property names must be 1 to {_MAX_PROPERTY_NAME} characters"
    if item is None or isinstance(item, str | bool | int):
        return None
    if isinstance(item, float):
        return None if math.isfinite(item) else "must be a finite number"
    if isinstance(item, list):
        if all(isinstance(entry, str) for entry in item):
            return None
        return "a list may only contain strings"
    return "must be a string, number, boolean, null or a list of strings"


def version_problem(version: object) -> str | None:
    """Why ``v`` is not this build's version, or None. ``1.0`` is the integer 1 (JSON has one number type)."""
    if version is None:
        return "is required"
    if isinstance(version, str):
        return f"must be the integer {CONTRACT_VERSION}, not the string {json.dumps(version, ensure_ascii=False)}"
    if isinstance(version, bool) or not isinstance(version, int | float):
        return f"must be the integer {CONTRACT_VERSION}, not {_json_kind(version)}"
    if isinstance(version, float) and not version.is_integer():
        return f"must be the integer {CONTRACT_VERSION}, not {version!r}"
    if version != CONTRACT_VERSION:
        return f"unsupported version {int(version)}; this build speaks v{CONTRACT_VERSION}"
    return None


def _json_kind(value: object) -> str:
    kinds = {bool: "a boolean", list: "an array", dict: "an object"}
    return next((name for kind, name in kinds.items() if isinstance(value, kind)), type(value).__name__)


class Version(fields.Field[int]):
    """``v``: the integer 1 (parse_message checks it first, before the type is looked at)."""

    json_schema: ClassVar[dict[str, Any]] = {"const": CONTRACT_VERSION}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        problem = version_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return CONTRACT_VERSION


def email_field() -> fields.String:
    # The contract's own rule (EMAIL_PATTERN), not marshmallow's Email: that one varies between
    # marshmallow versions and uses Python-only character classes no JSON Schema could publish.
    error = "Not a valid email address."
    return fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(EMAIL_PATTERN, error=error)
    )
