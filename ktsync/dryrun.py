"""`ktsync enqueue --dry-run`: the KlickTipp calls each message would cause, and why; nothing written.

It reads what a worker would read (reference data and the state store) and never calls a KlickTipp
operation that changes anything; nothing is enqueued.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from ktsync.core.contract import ContactDeleted, ContactUpsert, ContractError, Message, parse_message
from ktsync.worker.runtime import WorkerRuntime
from ktsync.worker.service import SyncOutcome
from ktsync.worker.sync.mapping import MappingConfigError, MappingError

Echo = Callable[[str], None]


def dry_run(lines: Iterable[str], runtime: WorkerRuntime, echo: Echo) -> int:
    """Print a plan per line; return how many lines were rejected."""
    rejected = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_message(json.loads(line))
            outcome = _preview(runtime, event)
        except (ContractError, MappingError, MappingConfigError, ValueError) as exc:
            rejected += 1
            echo(f"line {number}: rejected - {exc}")
            continue
        _print(number, event, outcome, echo)
    return rejected


def _preview(runtime: WorkerRuntime, event: Message) -> SyncOutcome:
    if isinstance(event, ContactUpsert):
        return runtime.services.sync.preview(event)
    if isinstance(event, ContactDeleted):
        return runtime.services.deletions.preview(event)
    policy = runtime.settings.sync.klicktipp_deletion_policy
    return SyncOutcome(f"no KlickTipp call; deletion-request policy {policy}")


def _print(number: int, event: Message, outcome: SyncOutcome, echo: Echo) -> None:
    who = _who(event)
    if not outcome.plan:
        echo(f"line {number} {who}: {outcome.status} - no KlickTipp call")
        return
    echo(f"line {number} {who}: {len(outcome.plan)} call(s)")
    for index, call in enumerate(outcome.plan, start=1):
        echo(f"  {index}. {call.describe()}")


def _who(event: Message) -> str:
    details: Mapping[str, object] = event.__dict__
    crm = details.get("crm_contact_id")
    address = details.get("email") or details.get("sms_number") or details.get("klicktipp_id")
    return f"{event.type} {event.source}/{crm or '-'} ({address})"
