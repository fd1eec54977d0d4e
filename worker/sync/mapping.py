"""Map a CRM contact's properties onto KlickTipp field values: pure, no I/O.

The mapping is resolved once against the account's field index (labels -> keys), then applied
to every event. A value that cannot be converted rejects the whole event before any API call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ktsync.config.settings import FieldMapping, SourceSettings
from ktsync.worker.sync.convert import ConversionError, ConversionOptions, FieldType, PropertyValue, convert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """Why one property could not be mapped."""

    property: str
    field: str
    value: object
    reason: str

    def __str__(self) -> str:
        return f"{self.property} -> {self.field}: {self.reason} (value {self.value!r})"


class MappingError(ValueError):
    """The event carries values KlickTipp would reject; nothing was sent."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def to_dict(self) -> dict[str, object]:
        return {
            "problems": [
                {"property": p.property, "field": p.field, "value": repr(p.value), "reason": p.reason}
                for p in self.problems
            ]
        }


class MappingConfigError(ValueError):
    """The configured mapping does not fit the account (unknown field key or label); ``problems``
    holds each as ``"key: reason"`` (a reason may contain "; " itself)."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = tuple([problems] if isinstance(problems, str) else problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ResolvedField:
    property: str
    key: str
    type: FieldType


@dataclass(frozen=True)
class ResolvedMapping:
    """A source's mapping with every target resolved to a field key of the account."""

    fields: tuple[ResolvedField, ...]
    crm_id_key: str
    options: ConversionOptions


@dataclass(frozen=True)
class MappedContact:
    email: str | None
    sms_number: str | None
    fields: Mapping[str, str]


def resolve_mapping(source: SourceSettings, field_index: Mapping[str, str]) -> ResolvedMapping:
    """Resolve keys and labels against ``GET /field`` (key -> label); fail on anything missing."""
    by_label = {label: key for key, label in field_index.items()}
    problems: list[str] = []
    resolved: list[ResolvedField] = []
    for mapping in source.fields:
        key = _target_key(mapping, field_index, by_label)
        if key is None:
            problems.append(f"sources.{source.name}.fields.{mapping.property}: {_missing(mapping)}")
            continue
        resolved.append(ResolvedField(mapping.property, key, FieldType(mapping.type)))
    crm_id_key = by_label.get(source.crm_id_field)
    if crm_id_key is None:
        problems.append(
            f"sources.{source.name}.crm_id_field: the account has no data field labelled "
            f"{source.crm_id_field!r}; create it in KlickTipp (a custom field of type line) or change the label"
        )
    if problems or crm_id_key is None:  # a missing crm_id_field is one of the problems
        raise MappingConfigError(problems)
    return ResolvedMapping(
        tuple(resolved), crm_id_key, ConversionOptions(default_country=source.default_country)
    )


def _target_key(mapping: FieldMapping, index: Mapping[str, str], by_label: Mapping[str, str]) -> str | None:
    if mapping.field is not None:
        return mapping.field if mapping.field in index else None
    return by_label.get(mapping.label or "")


def _missing(mapping: FieldMapping) -> str:
    if mapping.field is not None:
        return f"the account has no data field {mapping.field!r}"
    return f"the account has no data field labelled {mapping.label!r}"


def map_contact(
    *,
    crm_contact_id: str,
    email: str | None,
    sms_number: str | None,
    properties: Mapping[str, PropertyValue],
    mapping: ResolvedMapping,
) -> MappedContact:
    """Convert identity and mapped properties; raise MappingError listing every bad value."""
    problems: list[Problem] = []
    values: dict[str, str] = {mapping.crm_id_key: crm_contact_id}
    for target in mapping.fields:
        if target.property not in properties:
            continue
        raw = properties[target.property]
        try:
            converted = convert(raw, target.type, mapping.options)
        except ConversionError as exc:
            problems.append(Problem(target.property, target.key, raw, exc.reason))
            continue
        if converted is not None:
            values[target.key] = converted
    sms = _convert_identity("sms_number", sms_number, FieldType.PHONE, mapping.options, problems)
    mail = _convert_identity("email", email, FieldType.EMAIL, mapping.options, problems)
    if problems:
        raise MappingError(problems)
    unmapped = sorted(set(properties) - {t.property for t in mapping.fields})
    if unmapped:
        log.debug("unmapped properties ignored: %s", ", ".join(unmapped))
    return MappedContact(email=mail.lower() if mail else None, sms_number=sms, fields=values)


def _convert_identity(
    name: str, value: str | None, kind: FieldType, options: ConversionOptions, problems: list[Problem]
) -> str | None:
    if not value:
        return None
    try:
        return convert(value, kind, options)
    except ConversionError as exc:
        problems.append(Problem(name, name, value, exc.reason))
        return None
