"""Read what an error body says (codes, field details, messages), whatever of its three shapes it has.

Shapes (KLICKTIPP_API.md §4.2, §11): ``{"error": N, "code": M}``; the field-validation object
``{"field", "name", "field_value", "reason"}``; arrays of strings (English or German), sometimes with a
JSON object inside a string ("regex the first {…}") or the code as text (``["Error 4"]`` reads as
error 4); a bare JSON string (405); and, not JSON at all, the raw ``[message]`` of KlickTipp's
framework (``[Diesen Kontakt gibt es nicht.]``, ``[Missing required argument email]``). Proxies add
HTML and empty bodies. ``form`` says which shape came, for rules that depend on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

#: Keys of the field-validation object -> ValidationError keyword.
_FIELD_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {"field": "field", "name": "field_key", "field_value": "field_value", "reason": "field_reason"}
)
_EMBEDDED_OBJECT: Final = re.compile(r"\{.*?\}", re.DOTALL)
#: ``Error 4`` as the whole message: the string form of ``{"error": 4}`` (klicktipp-mcp's tests).
_ERROR_TEXT: Final = re.compile(r"^\s*Error\s+(\d+)\s*$", re.IGNORECASE)
#: The raw ``[message]`` (not JSON) of KlickTipp's framework: one line in square brackets.
_RAW_MESSAGE: Final = re.compile(r"^\[([^\[\]\n]*)\]$")
_TAGS: Final = re.compile(r"<[^>]*>")
_EXCERPT_CHARS: Final = 200


Form = Literal["empty", "object", "strings", "raw", "other"]


@dataclass(frozen=True)
class ErrorBody:
    """What an error body says: numeric codes, field details and messages."""

    #: False when a non-empty body had none of the known shapes (HTML, a number, garbage).
    understood: bool
    #: empty; a JSON object; JSON string(s); the framework's raw ``[message]``; anything else.
    form: Form = "empty"
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
        raw = _RAW_MESSAGE.match(text)
        if raw is not None:
            return _from_strings([raw.group(1).strip()], form="raw")
        embedded = _embedded_object(text)
        return _from_object(embedded, form="other", messages=(), excerpt=_excerpt(text))
    if isinstance(payload, dict):
        return _from_object(payload, form="object", messages=_own_messages(payload), excerpt=_excerpt(text))
    if isinstance(payload, str):
        return _from_strings([payload], form="strings")
    if isinstance(payload, list) and all(isinstance(item, str | dict) for item in payload):
        strings = [item for item in payload if isinstance(item, str)]
        first_object = next((item for item in payload if isinstance(item, dict)), None)
        if first_object is not None:
            return _from_object(first_object, form="object", messages=tuple(strings), excerpt="")
        return _from_strings(strings, form="strings")
    return ErrorBody(understood=False, form="other", excerpt=_excerpt(text))


def _from_strings(strings: list[str], *, form: Form) -> ErrorBody:
    """Messages; a code from an embedded ``{…}`` or from ``Error N``."""
    messages = tuple(strings)
    embedded = next((obj for obj in map(_embedded_object, strings) if obj is not None), None)
    if embedded is not None:
        return _from_object(embedded, form=form, messages=messages, excerpt="")
    as_code = next((m for m in map(_ERROR_TEXT.match, strings) if m is not None), None)
    error = int(as_code.group(1)) if as_code is not None else None
    return ErrorBody(understood=True, form=form, error=error, messages=messages)


def _from_object(
    obj: Mapping[str, Any] | None, *, form: Form, messages: tuple[str, ...], excerpt: str
) -> ErrorBody:
    if obj is None:
        return ErrorBody(understood=form != "other", form=form, messages=messages, excerpt=excerpt)
    field_info = {kw: _opt_str(obj.get(key)) for key, kw in _FIELD_KEYS.items()}
    has_fields = any(field_info[kw] is not None for kw in ("field", "field_key", "field_value"))
    return ErrorBody(
        understood=True,
        form=form,
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
