"""Validation of a submitted ``fields`` map against the account's data-field registry (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from fake_klicktipp.errors import FieldRejected, Rejected
from fake_klicktipp.fieldtypes import InvalidValue, as_text, normalize_value
from fake_klicktipp.model import DataField

UNKNOWN_FIELD_REASON = "is not a data field of this account"


def _shown(raw: object) -> str:
    try:
        return as_text(raw)
    except InvalidValue:
        return str(raw)


def validate_fields(
    registry: Mapping[str, DataField], submitted: object, *, on_update: bool = False
) -> dict[str, str]:
    """Normalized ``{key: value}`` for ``submitted``; raises FieldRejected on the first bad entry.

    Unknown keys are refused (the real API rejects them). ``None`` or an empty map means no change.
    """
    if submitted is None or submitted == "" or submitted == []:
        return {}
    if not isinstance(submitted, Mapping):
        raise Rejected(8)
    result: dict[str, str] = {}
    for key, raw in submitted.items():
        definition = registry.get(str(key))
        if definition is None:
            raise FieldRejected(
                field=str(key),
                name=str(key),
                value=_shown(raw),
                reason=UNKNOWN_FIELD_REASON,
                on_update=on_update,
            )
        try:
            result[definition.key] = normalize_value(definition.type, raw)
        except InvalidValue as exc:
            raise FieldRejected(
                field=definition.label,
                name=definition.key,
                value=_shown(raw),
                reason=exc.reason,
                on_update=on_update,
            ) from exc
    return result
