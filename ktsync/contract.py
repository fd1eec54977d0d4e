"""The versioned JSON message contract (v1) shared by producers and workers.

This module is the whole public wire format: producers validate with it before enqueueing, workers
validate again before acting. Every rejection is a :class:`ContractError` listing ``(field, reason)``
pairs, e.g. ``email: Not a valid email address.``

v1 messages (``occurred_at`` is ISO 8601 with a zone, or Unix seconds or milliseconds)::

    {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": "501",
     "email": "alex@shop.example", "sms_number": "+491701234567",
     "properties": {"firstname": "Alex", "lists": ["Newsletter"]},
     "occurred_at": "2026-11-22T10:00:00Z", "event_id": "optional-dedupe-id", "dry_run": false}
    {"v": 1, "type": "contact.deleted", "source": "hubspot", "crm_contact_id": "501",
     "email": "...", "occurred_at": ...}
    {"v": 1, "type": "klicktipp.deletion_requested", "email": "...", "klicktipp_id": "...",
     "occurred_at": ...}

Added compatibly in v1 (for producers that only know ids):

    {"v": 1, "type": "crm.contact_changed", "source": "zoho", "crm_contact_id": "...", "occurred_at": ...}
    {"v": 1, "type": "klicktipp.contact_changed", "email": "...", "klicktipp_id": "...", "occurred_at": ...}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

CONTRACT_VERSION = 1
SOURCE_PATTERN = r"^[a-z0-9_-]{1,32}$"
MILLISECONDS_THRESHOLD = 10**11  # a Unix timestamp this large is in milliseconds (year 5138 in seconds)
LATEST_PLAUSIBLE = 7258118400  # 2200-01-01: later "times" are unit mistakes, not events
MAX_PROPERTIES = 500

PropertyValue = str | int | float | bool | None | list[str]


class MessageType(StrEnum):
    UPSERT = "contact.upsert"
    DELETED = "contact.deleted"
    DELETION_REQUESTED = "klicktipp.deletion_requested"
    CHANGED = "crm.contact_changed"  # ids only: the worker loads the contact from the CRM first
    KLICKTIPP_CHANGED = "klicktipp.contact_changed"  # KlickTipp says a contact changed (status, fields)


class FieldError(NamedTuple):
    """One reason a message was rejected: the field (dotted path) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class ContractError(ValueError):
    """A message does not follow the contract; ``errors`` says which fields and why."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors = tuple(sorted(errors))
        super().__init__("; ".join(str(e) for e in self.errors))

    def to_dict(self) -> dict[str, Any]:
        return {"errors": [{"field": e.field, "reason": e.reason} for e in self.errors]}


@dataclass(frozen=True)
class ContactUpsert:
    source: str
    crm_contact_id: str
    email: str | None
    sms_number: str | None
    properties: Mapping[str, PropertyValue]
    occurred_at: float
    event_id: str | None = None
    dry_run: bool = False
    type: MessageType = field(default=MessageType.UPSERT, init=False)


@dataclass(frozen=True)
class ContactDeleted:
    source: str
    crm_contact_id: str
    email: str | None
    occurred_at: float
    event_id: str | None = None
    dry_run: bool = False
    type: MessageType = field(default=MessageType.DELETED, init=False)


@dataclass(frozen=True)
class DeletionRequested:
    email: str | None
    klicktipp_id: str | None
    occurred_at: float
    source: str = "klicktipp"
    event_id: str | None = None
    dry_run: bool = False
    type: MessageType = field(default=MessageType.DELETION_REQUESTED, init=False)


@dataclass(frozen=True)
class ContactChanged:
    """A CRM said "contact X changed" without the data (HubSpot creation events, Zoho notifications)."""

    source: str
    crm_contact_id: str
    occurred_at: float
    event_id: str | None = None
    dry_run: bool = False
    type: MessageType = field(default=MessageType.CHANGED, init=False)


@dataclass(frozen=True)
class KlickTippContactChanged:
    """KlickTipp's outbound webhook reported a contact (the worker reads its current status)."""

    email: str | None
    klicktipp_id: str | None
    occurred_at: float
    source: str = "klicktipp"
    event_id: str | None = None
    dry_run: bool = False
    type: MessageType = field(default=MessageType.KLICKTIPP_CHANGED, init=False)


Message = ContactUpsert | ContactDeleted | DeletionRequested | ContactChanged | KlickTippContactChanged


def parse_timestamp(value: object) -> float:
    """ISO 8601 with a zone, or Unix seconds / milliseconds, to float Unix seconds."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time with a zone or a Unix timestamp")
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError("must be a non-negative, finite Unix timestamp")
        seconds = number / 1000 if number >= MILLISECONDS_THRESHOLD else number
        if seconds >= LATEST_PLAUSIBLE:
            raise ValueError(f"{value!r} is not a plausible Unix timestamp (seconds or milliseconds)")
        return seconds
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return parse_timestamp(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone (add Z or an offset like +01:00)")
        return parsed.timestamp()
    raise ValueError("must be an ISO 8601 date-time with a zone or a Unix timestamp")


class _Timestamp(fields.Field[float]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class _Identifier(fields.Field[str]):
    """A non-empty string (numbers are accepted and turned into their decimal string)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("must be a string")
        text = str(value).strip()
        if not text or len(text) > 128:
            raise ValidationError("must be 1 to 128 characters")
        return text


class _Properties(fields.Field[dict[str, PropertyValue]]):
    """CRM property name -> string, number, boolean, null or list of strings."""

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
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        return "property names must be 1 to 100 characters"
    if item is None or isinstance(item, str | bool | int):
        return None
    if isinstance(item, float):
        return None if math.isfinite(item) else "must be a finite number"
    if isinstance(item, list):
        if all(isinstance(entry, str) for entry in item):
            return None
        return "a list may only contain strings"
    return "must be a string, number, boolean, null or a list of strings"


_SMS_PATTERN = r"^\+?[0-9][0-9 ()./-]{4,24}$"
_SOURCE_ERROR = "must be 1 to 32 characters of a-z, 0-9, _ or - (got {input!r})"


class _Base(Schema):
    class Meta:
        unknown = RAISE

    v = fields.Integer(required=True, strict=True)
    type = fields.String(required=True)
    occurred_at = _Timestamp(required=True)
    event_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    dry_run = fields.Boolean(load_default=False)


class _UpsertSchema(_Base):
    source = fields.String(required=True, validate=validate.Regexp(SOURCE_PATTERN, error=_SOURCE_ERROR))
    crm_contact_id = _Identifier(required=True)
    email = fields.Email(load_default=None, allow_none=True)
    sms_number = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(_SMS_PATTERN, error="not a phone number")
    )
    properties = _Properties(load_default=dict)

    @validates_schema
    def _email_or_sms(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email") and not data.get("sms_number"):
            raise ValidationError("email or sms_number is required", field_name="email")


class _DeletedSchema(_Base):
    source = fields.String(required=True, validate=validate.Regexp(SOURCE_PATTERN, error=_SOURCE_ERROR))
    crm_contact_id = _Identifier(required=True)
    email = fields.Email(load_default=None, allow_none=True)


class _DeletionRequestedSchema(_Base):
    source = fields.String(
        load_default="klicktipp", validate=validate.Regexp(SOURCE_PATTERN, error=_SOURCE_ERROR)
    )
    email = fields.Email(load_default=None, allow_none=True)
    klicktipp_id = _Identifier(load_default=None, allow_none=True)

    @validates_schema
    def _email_or_id(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email") and not data.get("klicktipp_id"):
            raise ValidationError("email or klicktipp_id is required", field_name="email")


class _ChangedSchema(_Base):
    source = fields.String(required=True, validate=validate.Regexp(SOURCE_PATTERN, error=_SOURCE_ERROR))
    crm_contact_id = _Identifier(required=True)


_SCHEMAS: dict[str, tuple[type[Schema], type[Any]]] = {
    MessageType.UPSERT: (_UpsertSchema, ContactUpsert),
    MessageType.DELETED: (_DeletedSchema, ContactDeleted),
    MessageType.DELETION_REQUESTED: (_DeletionRequestedSchema, DeletionRequested),
    MessageType.CHANGED: (_ChangedSchema, ContactChanged),
    MessageType.KLICKTIPP_CHANGED: (_DeletionRequestedSchema, KlickTippContactChanged),
}
_INSTANCES = {name: schema() for name, (schema, _) in _SCHEMAS.items()}


def parse_message(data: object) -> Message:
    """Validate one decoded message; raise ContractError naming every bad field."""
    if not isinstance(data, dict):
        raise ContractError([FieldError("$", "a message must be a JSON object")])
    version = data.get("v")
    if version != CONTRACT_VERSION or isinstance(version, bool):
        reason = (
            "is required" if version is None else f"unsupported version {version!r}; this build speaks v1"
        )
        raise ContractError([FieldError("v", reason)])
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _INSTANCES:
        allowed = ", ".join(sorted(_SCHEMAS))
        raise ContractError([FieldError("type", f"must be one of: {allowed}")])
    try:
        loaded = _INSTANCES[kind].load(data)
    except ValidationError as exc:
        raise ContractError(flatten_errors(exc.messages)) from None
    loaded.pop("v")
    loaded.pop("type")
    message: Message = _SCHEMAS[kind][1](**loaded)
    return message


def parse_json(raw: str | bytes) -> Message:
    """Decode and validate one JSON message (e.g. one line of a JSONL file)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError([FieldError("$", f"not valid JSON: {exc}")]) from None
    return parse_message(data)


def flatten_errors(messages: object, prefix: str = "") -> list[FieldError]:
    """Turn marshmallow's nested error dict into dotted ``(field, reason)`` pairs."""
    if isinstance(messages, dict):
        out: list[FieldError] = []
        for key, value in messages.items():
            name = "$" if key == "_schema" else str(key)
            out.extend(flatten_errors(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return [FieldError(prefix or "$", _humane(m)) for m in messages]
        return [e for m in messages for e in flatten_errors(m, prefix)]
    return [FieldError(prefix or "$", _humane(str(messages)))]


def _humane(reason: str) -> str:
    return "unknown field (not part of contract v1)" if reason == "Unknown field." else reason


# Celery task names per message type: part of the wire, since producers publish by name.
TASK_NAMES: Mapping[MessageType, str] = {
    MessageType.UPSERT: "ktsync.sync_contact",
    MessageType.DELETED: "ktsync.delete_contact",
    MessageType.DELETION_REQUESTED: "ktsync.handle_deletion_request",
    MessageType.CHANGED: "ktsync.fetch_and_sync",
    MessageType.KLICKTIPP_CHANGED: "ktsync.refresh_from_klicktipp",
}
