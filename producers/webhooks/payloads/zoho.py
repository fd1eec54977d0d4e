"""Zoho CRM notifications (``channel_id``, ``token``, ``module``, ``operation``, ``ids``) to messages.

Zoho sends ids only: ``insert``/``create`` and ``update``/``edit`` (both vocabularies are in use)
become one ``crm.contact_changed`` per id, ``delete`` one ``contact.deleted`` per id. Modules
other than ``Contacts`` and unknown operations are acknowledged and ignored. ``occurred_at`` is the
receipt time (Zoho's ``server_time`` is not documented firmly enough to rely on).

Deduplication is on a hash of the body, but only when the body carries ``server_time``: without
it, two genuine edits of the same records send identical bodies, and dropping the second would
lose a change.
"""

from __future__ import annotations

from ktsync.core.contract import MessageType
from ktsync.producers.webhooks.payloads.common import (
    Batch,
    Event,
    PayloadError,
    Problem,
    contact_message,
    fan_out_id,
    identifier,
    validated,
)

SOURCE = "zoho"
MODULE = "Contacts"
OPERATIONS = {
    "insert": MessageType.CHANGED,
    "create": MessageType.CHANGED,
    "update": MessageType.CHANGED,
    "edit": MessageType.CHANGED,
    "delete": MessageType.DELETED,
}


def zoho_notification(data: object, *, body_digest: str, now: float) -> Batch:
    """Map a decoded (and already authenticated) Zoho notification; ``now`` is the receipt time."""
    if not isinstance(data, dict):
        raise PayloadError([Problem(None, "$", "must be a JSON object (a Zoho notification)")])
    module = data.get("module")
    if module != MODULE:
        return Batch(events=(), received=1, ignored=1, note=f"module {module!r} is not handled")
    operation = data.get("operation")
    kind = OPERATIONS.get(operation.lower()) if isinstance(operation, str) else None
    if kind is None:
        return Batch(events=(), received=1, ignored=1, note=f"operation {operation!r} is not handled")
    ids = data.get("ids")
    if not isinstance(ids, list):
        raise PayloadError([Problem(None, "ids", "must be a list of record ids")])
    contacts = list(dict.fromkeys(identifier(value, None, f"ids.{i}") for i, value in enumerate(ids)))
    dedupe_id = body_digest if data.get("server_time") is not None else None
    fanned = len(contacts) > 1
    messages = tuple(
        validated(
            contact_message(
                kind,
                source=SOURCE,
                crm_contact_id=contact,
                occurred_at=now,
                event_id=fan_out_id(dedupe_id, contact, fanned),
            ),
            None,
        )
        for contact in contacts
    )
    return Batch(events=(Event(dedupe_id=dedupe_id, messages=messages),), received=1)
