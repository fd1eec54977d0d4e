"""HubSpot webhook batches (a JSON array of events) to ``crm.contact_changed`` / ``contact.deleted``.

Contact events come as legacy ``contact.<kind>`` or as ``object.<kind>`` with ``objectTypeId``
``0-1`` (or ``objectName`` ``contact``); every other object is ignored. Kinds:

===================================================  =========================================
creation, propertyChange, restore, associationChange  ``crm.contact_changed`` (the worker fetches)
deletion                                              ``contact.deleted``
privacyDeletion (a GDPR erasure request)              ``contact.deleted`` with ``"privacy": true``
merge                                                 changed for ``primaryObjectId``, deleted for
                                                      each of ``mergedObjectIds``
===================================================  =========================================

Each event is deduplicated on its ``eventId``; ``occurred_at`` is ``occurredAt`` (milliseconds). A batch
with a privacy deletion is not collapsed to one message per contact: a newer change of the same contact
in the batch must not push the erasure out (the worker skips what is older than the erasure anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ktsync.core.contract import MessageType
from ktsync.producers.webhooks.payloads.common import (
    Batch,
    Event,
    Message,
    PayloadError,
    Problem,
    contact_message,
    fan_out_id,
    identifier,
    timestamp,
    validated,
)

SOURCE = "hubspot"
CONTACT_TYPE_ID = "0-1"
CHANGED_KINDS = frozenset({"creation", "propertyChange", "restore", "associationChange"})
DELETED_KINDS = frozenset({"deletion"})
PRIVACY_KINDS = frozenset({"privacyDeletion"})
MERGE_KIND = "merge"


def hubspot_batch(data: object) -> Batch:
    """Map a decoded HubSpot request body; PayloadError lists every malformed event by index."""
    if not isinstance(data, list):
        raise PayloadError([Problem(None, "$", "must be a JSON array of HubSpot events")])
    events: list[Event] = []
    problems: list[Problem] = []
    for index, item in enumerate(data):
        try:
            event = _event(item, index)
        except PayloadError as exc:
            problems.extend(exc.problems)
            continue
        if event is not None:
            events.append(event)
    if problems:
        raise PayloadError(problems)
    erasure = any(message.get("privacy") for event in events for message in event.messages)
    return Batch(
        events=tuple(events), received=len(data), ignored=len(data) - len(events), collapse=not erasure
    )


def _event(item: object, index: int) -> Event | None:
    if not isinstance(item, dict):
        raise PayloadError([Problem(index, "$", "an event must be a JSON object")])
    kind = _contact_kind(item)
    if kind is None:
        return None
    if kind in CHANGED_KINDS:
        targets = [(MessageType.CHANGED, i) for i in _changed_ids(item, kind, index)]
    elif kind in DELETED_KINDS | PRIVACY_KINDS:
        targets = [(MessageType.DELETED, identifier(item.get("objectId"), index, "objectId"))]
    elif kind == MERGE_KIND:
        targets = _merge_targets(item, index)
    else:
        return None  # a contact event kind ktsync does not act on
    event_id = identifier(item.get("eventId"), index, "eventId")
    occurred_at = item.get("occurredAt")
    timestamp(occurred_at, index, "occurredAt")
    fanned = len(targets) > 1
    privacy = {"privacy": True} if kind in PRIVACY_KINDS else {}
    messages: list[Message] = [
        validated(
            {
                **contact_message(
                    message_type,
                    source=SOURCE,
                    crm_contact_id=contact,
                    occurred_at=occurred_at,
                    event_id=fan_out_id(event_id, contact, fanned),
                ),
                **privacy,
            },
            index,
        )
        for message_type, contact in targets
    ]
    return Event(dedupe_id=event_id, messages=tuple(messages))


def _contact_kind(item: Mapping[str, Any]) -> str | None:
    """The event kind (``creation``, ``merge``, ...) when the event is about a contact, else None."""
    subscription = item.get("subscriptionType")
    if not isinstance(subscription, str) or "." not in subscription:
        return None
    family, _, kind = subscription.partition(".")
    if family == "contact":
        return kind
    if family == "object":
        type_id = item.get("objectTypeId")
        name = item.get("objectName")
        is_contact = str(type_id) == CONTACT_TYPE_ID or (isinstance(name, str) and name.lower() == "contact")
        return kind if is_contact else None
    return None


def _changed_ids(item: Mapping[str, Any], kind: str, index: int) -> list[str]:
    """The contact(s) a change concerns; an association names its contact ends, not an objectId."""
    if kind != "associationChange" or item.get("objectId") is not None:
        return [identifier(item.get("objectId"), index, "objectId")]
    ends: list[str] = []
    association = str(item.get("associationType") or "")
    if str(item.get("fromObjectTypeId")) == CONTACT_TYPE_ID or association.startswith("CONTACT_TO_"):
        ends.append(identifier(item.get("fromObjectId"), index, "fromObjectId"))
    if str(item.get("toObjectTypeId")) == CONTACT_TYPE_ID or association.endswith("_TO_CONTACT"):
        ends.append(identifier(item.get("toObjectId"), index, "toObjectId"))
    if not ends:
        raise PayloadError([Problem(index, "fromObjectId", "an association change names no contact")])
    return list(dict.fromkeys(ends))


def _merge_targets(item: Mapping[str, Any], index: int) -> list[tuple[MessageType, str]]:
    primary = identifier(item.get("primaryObjectId"), index, "primaryObjectId")
    merged = item.get("mergedObjectIds")
    if not isinstance(merged, list):
        raise PayloadError([Problem(index, "mergedObjectIds", "must be a list of contact ids")])
    losers = [identifier(value, index, f"mergedObjectIds.{i}") for i, value in enumerate(merged)]
    unique = [loser for loser in dict.fromkeys(losers) if loser != primary]
    return [(MessageType.CHANGED, primary), *((MessageType.DELETED, loser) for loser in unique)]
