"""Read what an error body says (codes, field details, messages), whatever of its three shapes it has.

Shapes (KLICKTIPP_API.md §4.2): ``{"error": N, "code": M}``; the field-validation object
``{"field", "name", "field_value", "reason"}``; arrays of strings (English or German), sometimes with a
JSON object inside a string ("regex the first {…}"). Proxies add HTML and empty bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

#: Keys of the field-validation object -> ValidationError keyword.
_FIELD_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {"field": "field", "name": "field_key", "field_value": "field_value", "reason": "field_reason"}
)
_EMBEDDED_OBJECT: Final = re.compile(r"\{.*?\}", re.DOTALL)
_TAGS: Final = re.compile(r"<[^>]*>")
_EXCERPT_CHARS: Final = 200


@dataclass(frozen=True)
class ErrorBody:
    """What an error body says: numeric codes, field details and messages."""

    #: False when a non-empty body had none of the known shapes (HTML, a number, garbage).
    understood: bool
    error: int | None = None
    code: int | None = None
    field_info: Mapping[str, str | None] | None = None
    messages: tuple[str, ...] = ()
    excerpt: str = ""


def read_error_body(body: bytes | str) -> ErrorBody:
    """Decode leniently; never raises."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return ErrorBody(understood=True)
    try:
        payload = json.loads(text)
    except ValueError:
        return _from_object(_embedded_object(text), understood=False, messages=(), excerpt=_excerpt(text))
    if isinstance(payload, dict):
        return _from_object(payload, understood=True, messages=_own_messages(payload), excerpt=_excerpt(text))
    strings: list[str] = []
    if isinstance(payload, str):
        strings = [payload]
    elif isinstance(payload, list) and all(isinstance(item, str | dict) for item in payload):
        strings = [item for item in payload if isinstance(item, str)]
        first_object = next((item for item in payload if isinstance(item, dict)), None)
        if first_object is not None:
            return _from_object(first_object, understood=True, messages=tuple(strings), excerpt="")
    else:
        return ErrorBody(understood=False, excerpt=_excerpt(text))
    embedded = next((obj for obj in map(_embedded_object, strings) if obj is not None), None)
    return _from_object(embedded, understood=True, messages=tuple(strings), excerpt="")


def _from_object(
    obj: Mapping[str, Any] | None, *, understood: bool, messages: tuple[str, ...], excerpt: str
) -> ErrorBody:
    if obj is None:
        return ErrorBody(understood=understood, messages=messages, excerpt=excerpt)
    field_info = {kw: _opt_str(obj.get(key)) for key, kw in _FIELD_KEYS.items()}
    has_fields = any(field_info[kw] is not None for kw in ("field", "field_key", "field_value"))
    return ErrorBody(
        understood=True,
        error=_opt_int(obj.get("error")),
        code=_opt_int(obj.get("code")),
        field_info=field_info if has_fields else None,
        messages=messages,
        excerpt=excerpt,
    )


def _embedded_object(text: str) -> dict[str, Any] | None:
    """The first ``{…}`` in ``text`` that is a JSON object carrying an error code or field details."""
    for match in _EMBEDDED_OBJECT.finditer(text):
        try:
            candidate = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(candidate, dict) and ({"error", "code", "field", "name"} & candidate.keys()):
            return candidate
    return None


def _own_messages(obj: Mapping[str, Any]) -> tuple[str, ...]:
    message = obj.get("message")
    return (message,) if isinstance(message, str) and message else ()


def _opt_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _excerpt(text: str) -> str:
    flat = " ".join(_TAGS.sub(" ", text).split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[: _EXCERPT_CHARS - 1] + "…"
