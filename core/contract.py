"""The versioned JSON message contract (v1) shared by producers and workers.

This module is the whole public wire format: producers validate with it before enqueueing, workers
validate again before acting. Every rejection is a :class:`ContractError` listing ``(field, reason)``
pairs, e.g. ``email: Not a valid email address.`` The field rules are in ``ktsync.core.contract_fields`` and
``ktsync.core.contract_patterns``; the JSON Schema (``ktsync contract schema``, committed as
``producers/contract-v1.schema.json``) is generated from the schemas below by ``ktsync.core.contract_schema``.

v1 messages (``occurred_at`` is ISO 8601 with a zone, or Unix seconds or milliseconds)::

    {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": "501",
     "email": "alex@shop.example", "sms_number": "+491701234567",
     "properties": {"firstname": "Alex", "lists": ["Newsletter"]},
     "occurred_at": "2026-11-22T10:00:00Z", "event_id": "optional-dedupe-id", "dry_run": false}
    {"v": 1, "type": "contact.deleted", "source": "hubspot", "crm_contact_id": "501",
     "email": "...", "occurred_at": ..., "privacy": false}
    {"v": 1, "type": "klicktipp.deletion_requested", "email": "...", "klicktipp_id": "...",
     "occurred_at": ...}

Added compatibly in v1 (for producers that only know ids):

    {"v": 1, "type": "crm.contact_changed", "source": "zoho", "crm_contact_id": "...", "occurred_at": ...}
    {"v": 1, "type": "klicktipp.contact_changed", "email": "...", "klicktipp_id": "...", "occurred_at": ...}

``privacy`` (optional boolean, default false) on ``contact.deleted``, added compatibly in v1: true makes
the deletion a privacy deletion (a GDPR erasure request) that follows the source's
``privacy_deletion_policy`` instead of its ``deletion_policy``.

``tenant`` (optional, every type, ``[a-z0-9_-]{1,64}``, default ``default``), added compatibly in v1
(ktsync 0.4): the KlickTipp account the message is for, one of the deployment's tenants. An unknown
or disabled tenant is refused by ktsync's producers and dead-lettered as ``config`` by the worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ktsync.core.contract_fields import CONTRACT_VERSION as CONTRACT_VERSION
from ktsync.core.contract_fields import LATEST_PLAUSIBLE as LATEST_PLAUSIBLE
from ktsync.core.contract_fields import MAX_PROPERTIES as MAX_PROPERTIES
from ktsync.core.contract_fields import MILLISECONDS_THRESHOLD as MILLISECONDS_THRESHOLD
from ktsync.core.contract_fields import Identifier, Properties, Timestamp, Version, email_field
from ktsync.core.contract_fields import PropertyValue as PropertyValue
from ktsync.core.contract_fields import parse_timestamp as parse_timestamp
from ktsync.core.contract_fields import version_problem as version_problem
from ktsync.core.contract_patterns import SMS_PATTERN, SOURCE_PATTERN, TENANT_PATTERN
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE

__all__ = [
    "CONTRACT_VERSION",
    "LATEST_PLAUSIBLE",
    "MAX_PROPERTIES",
    "MESSAGE_SCHEMAS",
    "MILLISECONDS_THRESHOLD",
    "TASK_NAMES",
    "ContactChanged",
    "ContactDeleted",
    "ContactUpsert",
    "ContractError",
    "DeletionRequested",
    "FieldError",
    "KlickTippContactChanged",
    "Message",
    "MessageType",
    "PropertyValue",
    "flatten_errors",
    "parse_json",
    "parse_message",
    "parse_timestamp",
    "version_problem",
]


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
    tenant: str = DEFAULT_TENANT  # the KlickTipp account (see ktsync.core.tenants)
    type: MessageType = field(default=MessageType.UPSERT, init=False)


@dataclass(frozen=True)
class ContactDeleted:
    source: str
    crm_contact_id: str
    email: str | None
    occurred_at: float
    event_id: str | None = None
    dry_run: bool = False
    privacy: bool = False  # a privacy deletion (GDPR erasure): see the module docstring
    tenant: str = DEFAULT_TENANT  # the KlickTipp account (see ktsync.core.tenants)
    type: MessageType = field(default=MessageType.DELETED, init=False)


@dataclass(frozen=True)
class DeletionRequested:
    email: str | None
    klicktipp_id: str | None
    occurred_at: float
    source: str = "klicktipp"
    event_id: str | None = None
    dry_run: bool = False
    tenant: str = DEFAULT_TENANT  # the KlickTipp account (see ktsync.core.tenants)
    type: MessageType = field(default=MessageType.DELETION_REQUESTED, init=False)


@dataclass(frozen=True)
class ContactChanged:
    """A CRM said "contact X changed" without the data (HubSpot creation events, Zoho notifications)."""

    source: str
    crm_contact_id: str
    occurred_at: float
    event_id: str | None = None
    dry_run: bool = False
    tenant: str = DEFAULT_TENANT  # the KlickTipp account (see ktsync.core.tenants)
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
    tenant: str = DEFAULT_TENANT  # the KlickTipp account (see ktsync.core.tenants)
    type: MessageType = field(default=MessageType.KLICKTIPP_CHANGED, init=False)


Message = ContactUpsert | ContactDeleted | DeletionRequested | ContactChanged | KlickTippContactChanged


def _source_field(**options: Any) -> fields.String:
    error = "must be 1 to 32 characters of a-z, 0-9, _ or - (got {input!r})"
    return fields.String(validate=validate.Regexp(SOURCE_PATTERN, error=error), **options)


class _Base(Schema):
    """What every message type shares. ``REQUIRE_ONE_OF``: at least one of these fields, not null."""

    REQUIRE_ONE_OF: ClassVar[tuple[str, ...]] = ()

    class Meta:
        unknown = RAISE

    v = Version(required=True)
    type = fields.String(required=True)
    occurred_at = Timestamp(required=True)
    event_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    dry_run = fields.Boolean(load_default=False)
    tenant = fields.String(
        load_default=DEFAULT_TENANT,
        validate=validate.Regexp(TENANT_PATTERN, error=f"{TENANT_RULE} (got {{input!r}})"),
    )

    @validates_schema
    def _require_one_of(self, data: dict[str, Any], **_: Any) -> None:
        names = self.REQUIRE_ONE_OF
        if names and all(data.get(name) is None for name in names):
            raise ValidationError(f"{' or '.join(names)} is required", field_name=names[0])


class _UpsertSchema(_Base):
    source = _source_field(required=True)
    crm_contact_id = Identifier(required=True)
    email = email_field()
    sms_number = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(SMS_PATTERN, error="not a phone number")
    )
    properties = Properties(load_default=dict)

    REQUIRE_ONE_OF = ("email", "sms_number")


class _DeletedSchema(_Base):
    source = _source_field(required=True)
    crm_contact_id = Identifier(required=True)
    email = email_field()
    privacy = fields.Boolean(load_default=False)


class _DeletionRequestedSchema(_Base):
    source = _source_field(load_default="klicktipp")
    email = email_field()
    klicktipp_id = Identifier(load_default=None, allow_none=True)

    REQUIRE_ONE_OF = ("email", "klicktipp_id")


class _ChangedSchema(_Base):
    source = _source_field(required=True)
    crm_contact_id = Identifier(required=True)


_SCHEMAS: dict[str, tuple[type[Schema], type[Any]]] = {
    MessageType.UPSERT: (_UpsertSchema, ContactUpsert),
    MessageType.DELETED: (_DeletedSchema, ContactDeleted),
    MessageType.DELETION_REQUESTED: (_DeletionRequestedSchema, DeletionRequested),
    MessageType.CHANGED: (_ChangedSchema, ContactChanged),
    MessageType.KLICKTIPP_CHANGED: (_DeletionRequestedSchema, KlickTippContactChanged),
}
_INSTANCES = {name: schema() for name, (schema, _) in _SCHEMAS.items()}
MESSAGE_SCHEMAS: Mapping[MessageType, type[Schema]] = {MessageType(k): s for k, (s, _) in _SCHEMAS.items()}


def parse_message(data: object) -> Message:
    """Validate one decoded message; raise ContractError naming every bad field."""
    if not isinstance(data, dict):
        raise ContractError([FieldError("$", "a message must be a JSON object")])
    problem = version_problem(data.get("v"))
    if problem is not None:
        raise ContractError([FieldError("v", problem)])
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
