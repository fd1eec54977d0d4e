"""Check the client's arguments and shape them as the spec's requests expect (``ValueError`` if wrong)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import quote

from .models import BOUNCE_FILTERS, STATUS_FILTERS, BounceFilter, StatusFilter

Id = str | int
FieldValue = str | int
#: ``fieldFirstName`` -> ``FirstName``, ``field203826`` -> ``203826`` (as the vendor clients do).
_FIELD_PREFIX: Final = re.compile(r"^field(?=[0-9A-Z])")


def ident(value: Id, what: str) -> str:
    """Any non-empty ID, as ``str`` (subscriber IDs may also be a "Contact Key" hash); a number below 1
    is refused: KlickTipp's IDs start at 1 and its PHP connector reads a falsy ``listid`` as none,
    which runs the account's default double opt-in (KLICKTIPP_API.md §3.1)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} must be a string or an integer")
    result = str(value).strip()
    if not result:
        raise ValueError(f"{what} must not be empty")
    if _is_number(result) and int(result) < 1:
        raise ValueError(f"{what} must be 1 or more, not {result} (KlickTipp may read it as 'none')")
    return result


def numeric_id(value: Id, what: str) -> int:
    """Tag and list IDs: integers of 1 or more in the spec's request bodies and paths."""
    result = ident(value, what)
    if not (result.isascii() and result.isdecimal()):
        raise ValueError(f"{what} must be numeric")
    return int(result)


def _is_number(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isascii() and digits.isdecimal()


def subscriber_path(subscriber_id: Id) -> str:
    return "/subscriber/" + quote(ident(subscriber_id, "subscriber_id"), safe="")


def field_path(fieldid: str) -> str:
    """``/field/{id}`` with the ``field`` prefix stripped, as the API expects."""
    return "/field/" + quote(_FIELD_PREFIX.sub("", ident(fieldid, "fieldid")), safe="")


def nonempty(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value.strip()


def present(**values: object) -> dict[str, object]:
    """The keyword arguments that are not None (optional body members are omitted, not null)."""
    return {key: value for key, value in values.items() if value is not None}


def field_values(fields: Mapping[str, FieldValue] | None) -> dict[str, str] | None:
    """The spec types field values as strings, so integers (numbers, dates, decimals x 100) go as text."""
    if not fields:
        return None
    result: dict[str, str] = {}
    for key, value in fields.items():
        if not key.startswith("field"):
            raise ValueError(f"field key {key!r} does not start with 'field'")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"field {key!r} needs a str or int value (decimals as int x 100)")
        result[key] = str(value)
    return result


def filters(
    status: StatusFilter | Iterable[StatusFilter] | None,
    bounce_status: BounceFilter | Iterable[BounceFilter] | None,
) -> dict[str, str]:
    """Query parameters as comma-separated lowercase tokens (``status=subscribed,pending``)."""
    params: dict[str, str] = {}
    for name, value, allowed in (
        ("status", status, STATUS_FILTERS),
        ("bounceStatus", bounce_status, BOUNCE_FILTERS),
    ):
        tokens = [value] if isinstance(value, str) else list(value or ())
        unknown = sorted(set(tokens) - allowed)
        if unknown:
            raise ValueError(f"unknown {name} filter {unknown}; use {sorted(allowed)}")
        if tokens:
            params[name] = ",".join(dict.fromkeys(tokens))
    return params
