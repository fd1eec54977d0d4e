"""The generic route: one contract-v1 message or a JSON array of them, all valid or none enqueued."""

from __future__ import annotations

from typing import Any, cast

from ktsync.core.contract import ContractError, parse_message
from ktsync.producers.webhooks.payloads.common import Batch, Event, PayloadError, Problem


def generic_messages(data: object) -> Batch:
    """Validate every message; PayloadError lists every rejection as (index, field, reason).

    A message with an ``event_id`` is deduplicated on ``{source}:{event_id}`` (event ids are
    unique per source, as the workers see them).
    """
    if isinstance(data, dict):
        items: list[object] = [data]
    elif isinstance(data, list):
        items = list(data)
    else:
        raise PayloadError([Problem(None, "$", "must be a contract-v1 message or a JSON array of them")])
    events: list[Event] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            message = parse_message(item)
        except ContractError as exc:
            problems.extend(Problem(index, error.field, error.reason) for error in exc.errors)
            continue
        dedupe_id = f"{message.source}:{message.event_id}" if message.event_id else None
        # parse_message accepted it, so it is a JSON object: enqueue it exactly as the producer sent it
        events.append(Event(dedupe_id=dedupe_id, messages=(cast(dict[str, Any], item),)))
    if problems:
        raise PayloadError(problems)
    return Batch(events=tuple(events), received=len(items), collapse=False)
