"""What every vendor mapping produces (a Batch of Events), its errors, and the shared builders.

A vendor payload becomes a :class:`Batch`: one :class:`Event` per vendor event that concerns a
contact, each with the id it is deduplicated on and the contract-v1 messages it maps to (already
validated by the contract). Events that are not about contacts are counted as ``ignored``.
Malformed input raises :class:`PayloadError` listing every problem as ``(index, field, reason)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ktsync.core.contract import ContractError, MessageType, parse_message, parse_timestamp

Message = Mapping[str, Any]
MAX_EVENT_ID = 200  # the contract's limit for event_id


@dataclass(frozen=True)
class Problem:
    """One reason a payload was refused: which event (None: the whole body), which field, why."""

    index: int | None
    field: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class PayloadError(ValueError):
    """The payload cannot be mapped; nothing of it may be enqueued."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"[{p.index}] {p.field}: {p.reason}" for p in self.problems))


@dataclass(frozen=True)
class Event:
    """One vendor event: the id it is deduplicated on (None: never) and its messages."""

    dedupe_id: str | None
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class Batch:
    """Everything one request asks for. ``collapse``: keep one message per contact (newest)."""

    events: tuple[Event, ...]
    received: int
    ignored: int = 0
    note: str | None = None
    collapse: bool = True


def decode_json(body: bytes) -> object:
    """The decoded body, or PayloadError("not valid JSON")."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError([Problem(None, "$", "not valid JSON")]) from None


def identifier(value: object, index: int | None, name: str) -> str:
    """A vendor object id as a string of 1 to 128 characters (numbers are stringified)."""
    if value is None or value == "":
        raise PayloadError([Problem(index, name, "is required")])
    if isinstance(value, bool) or not isinstance(value, str | int) or not 0 < len(str(value)) <= 128:
        raise PayloadError(
            [Problem(index, name, "must be an id (a string or integer of 1 to 128 characters)")]
        )
    return str(value)


def timestamp(value: object, index: int | None, name: str) -> float:
    """A vendor timestamp as Unix seconds (ISO 8601 with a zone, Unix seconds or milliseconds)."""
    if value is None:
        raise PayloadError([Problem(index, name, "is required")])
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise PayloadError([Problem(index, name, str(exc))]) from None


def contact_message(
    kind: MessageType, *, source: str, crm_contact_id: str, occurred_at: object, event_id: str | None
) -> Message:
    """A ``crm.contact_changed`` or ``contact.deleted`` message for one CRM contact."""
    message: dict[str, Any] = {
        "v": 1,
        "type": str(kind),
        "source": source,
        "crm_contact_id": crm_contact_id,
        "occurred_at": occurred_at,
    }
    if event_id is not None:
        message["event_id"] = event_id[:MAX_EVENT_ID]
    return message


def fan_out_id(event_id: str | None, crm_contact_id: str, fanned: bool) -> str | None:
    """The event_id of one message of an event: the vendor's id, plus the contact when it fans out.

    Workers apply an event_id once per source, so the messages of one vendor event that concern
    several contacts (a merge, a Zoho notification) need ids of their own.
    """
    if event_id is None or not fanned:
        return event_id
    return f"{event_id}:{crm_contact_id}"


def validated(message: Message, index: int | None) -> Message:
    """The message, once the contract accepts it; otherwise PayloadError naming the contract fields."""
    try:
        parse_message(dict(message))
    except ContractError as exc:
        raise PayloadError([Problem(index, error.field, error.reason) for error in exc.errors]) from None
    return message


def collapse(messages: Sequence[Message]) -> list[Message]:
    """One message per (source, contact): the one with the newest ``occurred_at`` (later wins a tie).

    An older event for a contact is skipped by the worker as stale anyway, and a fetch-based
    ``crm.contact_changed`` reads the contact's current state, so the newest is all that matters.
    Messages without a CRM contact id are kept as they are, in order.
    """
    newest: dict[tuple[str, str], tuple[float, int]] = {}
    for position, message in enumerate(messages):
        contact = message.get("crm_contact_id")
        if contact is None:
            continue
        key = (str(message.get("source")), str(contact))
        when = parse_timestamp(message["occurred_at"])
        if key not in newest or when >= newest[key][0]:
            newest[key] = (when, position)
    keep = {position for _, position in newest.values()}
    return [m for i, m in enumerate(messages) if m.get("crm_contact_id") is None or i in keep]
