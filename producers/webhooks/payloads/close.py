"""Close webhook events (one per request) to ``crm.contact_changed`` / ``contact.deleted``.

Body: ``{"subscription_id", "event": {"id", "action", "object_type", "object_id", "date_created",
"date_updated", "data", "meta", ...}}``. Only ``object_type == "contact"`` is acted on; others are
acknowledged and ignored (the answer says so).

=================  ============================================================================
created, updated   ``crm.contact_changed`` for ``object_id``
deleted            ``contact.deleted`` for ``object_id``
merged             changed for the destination, deleted for the source; ids from ``meta``
                   (``merge_destination_contact_id`` / ``merge_source_contact_id``), the
                   destination defaulting to ``object_id``
=================  ============================================================================

Deduplicated on ``event.id``; ``occurred_at`` is ``date_updated`` (else ``date_created``, else the
receipt time). Close writes its times in UTC, sometimes without a zone: those are read as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ktsync.core.contract import MessageType
from ktsync.producers.webhooks.payloads.common import (
    Batch,
    Event,
    PayloadError,
    Problem,
    contact_message,
    fan_out_id,
    identifier,
    timestamp,
    validated,
)

SOURCE = "close"
CHANGED_ACTIONS = frozenset({"created", "updated"})
DELETED_ACTIONS = frozenset({"deleted"})
MERGED_ACTION = "merged"
MERGE_SOURCE_KEYS = ("merge_source_contact_id",)
MERGE_DESTINATION_KEYS = ("merge_destination_contact_id",)


def close_event(data: object, *, now: float) -> Batch:
    """Map a decoded Close request body (``now``: receipt time, the fallback ``occurred_at``)."""
    if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
        raise PayloadError([Problem(None, "event", "must be an object (a Close webhook event)")])
    event: Mapping[str, Any] = data["event"]
    event_id = identifier(event.get("id"), None, "event.id")
    object_type = event.get("object_type")
    if object_type != "contact":
        return Batch(events=(), received=1, ignored=1, note=f"object_type {object_type!r} is not handled")
    action = event.get("action")
    object_id = identifier(event.get("object_id"), None, "event.object_id")
    if action in CHANGED_ACTIONS:
        targets = [(MessageType.CHANGED, object_id)]
    elif action in DELETED_ACTIONS:
        targets = [(MessageType.DELETED, object_id)]
    elif action == MERGED_ACTION:
        targets = _merge_targets(event, object_id)
    else:
        return Batch(events=(), received=1, ignored=1, note=f"action {action!r} is not handled")
    occurred_at = _occurred_at(event, now)
    fanned = len(targets) > 1
    messages = tuple(
        validated(
            contact_message(
                kind,
                source=SOURCE,
                crm_contact_id=contact,
                occurred_at=occurred_at,
                event_id=fan_out_id(event_id, contact, fanned),
            ),
            None,
        )
        for kind, contact in targets
    )
    return Batch(events=(Event(dedupe_id=event_id, messages=messages),), received=1)


def _merge_targets(event: Mapping[str, Any], object_id: str) -> list[tuple[MessageType, str]]:
    raw_meta = event.get("meta")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    destination = _first(meta, MERGE_DESTINATION_KEYS) or object_id
    destination = identifier(destination, None, "event.meta.merge_destination_contact_id")
    targets = [(MessageType.CHANGED, destination)]
    source = _first(meta, MERGE_SOURCE_KEYS)
    if source is not None:
        source = identifier(source, None, "event.meta.merge_source_contact_id")
        if source != destination:
            targets.append((MessageType.DELETED, source))
    return targets


def _first(meta: Mapping[str, Any], keys: tuple[str, ...]) -> object:
    return next((meta[key] for key in keys if meta.get(key) not in (None, "")), None)


def _occurred_at(event: Mapping[str, Any], now: float) -> float:
    for name in ("date_updated", "date_created"):
        value = event.get(name)
        if value not in (None, ""):
            return timestamp(_as_utc(value), None, f"event.{name}")
    return now


def _as_utc(value: object) -> object:
    """Close's ISO times without a zone are UTC."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value  # let the contract's parser name the problem
    return value if parsed.tzinfo is not None else f"{value.strip()}+00:00"
