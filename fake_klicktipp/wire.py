"""The values passed between the ASGI layer and the operation handlers, and argument readers."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from fake_klicktipp.auth import Identity
from fake_klicktipp.errors import FakeError, MissingArgument, Msg, Refused


@dataclass(frozen=True)
class ApiRequest:
    """A decoded API request: path parameter, query, body, and the authenticated caller."""

    param: str | None
    query: Mapping[str, Any]
    body: Mapping[str, Any]
    identity: Identity | None
    sessid: str | None


@dataclass(frozen=True)
class Reply:
    """A JSON reply (``raw`` replaces the JSON encoding of ``body`` when set)."""

    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None
    content_type: str = "application/json"


def ok(body: Any, *headers: tuple[str, str]) -> Reply:
    """A 200 reply."""
    return Reply(200, body, headers)


def text_arg(body: Mapping[str, Any], key: str) -> str:
    """A required string argument; missing gives 401 "Missing required argument" (Drupal Services)."""
    value = body.get(key)
    if value is None or value == "":
        raise MissingArgument(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Refused(400, Msg.NOT_A_STRING, key=key)
    return str(value)


def optional_text(body: Mapping[str, Any], key: str) -> str | None:
    """An optional string argument (numbers are taken as their string form)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Refused(400, Msg.NOT_A_STRING, key=key)
    return str(value)


def optional_id(value: object, invalid: FakeError) -> int | None:
    """A numeric id given as a number or digit string; ``None`` when absent; ``invalid`` otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise invalid


def required_id(body: Mapping[str, Any], key: str, invalid: FakeError) -> int:
    """A required numeric id; missing gives 401 "Missing required argument", non-numeric ``invalid``."""
    found = optional_id(body.get(key), invalid)
    if found is None:
        raise MissingArgument(key)
    return found


def as_list(value: object) -> list[object]:
    """Items from a JSON array, a PHP form array, a CSV string or a single value (``[]`` when absent)."""
    if value is None or value == "":
        return []
    if isinstance(value, Mapping):  # PHP keys such as status[a]=… that did not become a list
        value = list(value.values())
    items = value if isinstance(value, list) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def id_list(value: object, invalid: FakeError) -> list[int]:
    """Numeric ids from any of the list forms ``as_list`` accepts; ``invalid`` for a non-number."""
    ids = [optional_id(item, invalid) for item in as_list(value)]
    return [tag_id for tag_id in ids if tag_id is not None]


def filter_tokens(value: object, allowed: Collection[str], default: frozenset[str]) -> frozenset[str]:
    """Status or bounce filter tokens; ``default`` when none are given; 406 for an unknown token."""
    tokens = frozenset(str(item) for item in as_list(value))
    unknown = sorted(tokens - set(allowed))
    if unknown:
        raise Refused(406, Msg.INVALID_FILTER, value=unknown[0])
    return tokens or default
