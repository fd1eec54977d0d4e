"""Replay dead letters: publish each original message again, marked so the worker can clear the entry.

The entry stays in the dead-letter store until its replayed task succeeds (the worker removes it
then); a replay that fails again comes back with the new error and its replay count.

A plain replay resends the stored message, old values included: right when the cause was outside
the message (KlickTipp down, a config or account fix). When the fix was made in the CRM (a value
KlickTipp or the mapping refused), a *refetch* replays the letter as a ``crm.contact_changed`` for
the same contact: the worker loads it from the CRM's API again and syncs what the CRM has now.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ktsync.core.contract import TASK_NAMES, ContractError, MessageType, parse_message

NOTIFY_TASK = "ktsync.notify_crm"
CHUNK = 500
# Messages that name a CRM contact whose data a reload brings anew. Deletions are not among them:
# the CRM no longer has the contact, and a reload would end as "not in the CRM" without deleting.
REFETCHABLE = frozenset({MessageType.UPSERT.value, MessageType.CHANGED.value})
WITHOUT_CRM_API = (
    "fix the value in the CRM so that it sends a new event for the contact, or edit the stored "
    "message and enqueue it again (ktsync dlq show ID --message > fix.jsonl; edit; ktsync enqueue "
    "fix.jsonl; ktsync dlq purge ID)"
)


class Letter(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def task(self) -> str: ...

    @property
    def message(self) -> Mapping[str, Any]: ...


class Sender(Protocol):
    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str: ...


def _no_api(source: str) -> str:
    return f"no CRM API is configured for source {source!r}"


@dataclass(frozen=True)
class Refetch:
    """Replay by reloading each contact from its CRM: the sources whose CRM API is configured, why
    another source's cannot be reloaded, and the time the reload stands for (``occurred_at``)."""

    sources: Collection[str]
    now: float
    why_not: Callable[[str], str] = field(default=_no_api)


@dataclass(frozen=True)
class ReplayResult:
    letter_id: str
    task_id: str | None
    problem: str = ""
    refetched: bool = False


def replay(
    letters: Iterable[Letter],
    sender: Sender,
    *,
    dry_run: bool = False,
    room: Callable[[int], object] | None = None,
    chunk: int = CHUNK,
    refetch: Refetch | None = None,
    noted: Callable[[str], object] | None = None,
) -> list[ReplayResult]:
    """Publish each letter's message again with ``replay_of``; refuse what cannot succeed as it is.

    With ``refetch``, publish instead a ``crm.contact_changed`` of the letter's contact (refused,
    and left in the store, where there is no CRM API or nothing to reload).
    ``room(n)`` is called before every ``chunk`` replays and may block (the bulk lane's flow control).
    ``noted(letter_id)`` is called just before a letter's replay is published (the store counts it
    then: counted after, the count could overwrite, or be overwritten by, what a fast worker wrote
    when the replay failed again)."""
    results = []
    sent = 0
    for letter in letters:
        task, args, problem = _task_args(letter) if refetch is None else refetch_args(letter, refetch)
        if problem or dry_run:
            results.append(ReplayResult(letter.id, None, problem, refetched=refetch is not None))
            continue
        if room is not None and sent % chunk == 0:
            room(chunk)
        if noted is not None:
            noted(letter.id)
        task_id = sender.send(task, args, {"replay_of": letter.id}, str(uuid.uuid4()))
        sent += 1
        results.append(ReplayResult(letter.id, task_id, refetched=refetch is not None))
    return results


def _task_args(letter: Letter) -> tuple[str, list[Any], str]:
    message = dict(letter.message)
    if letter.task == NOTIFY_TASK:
        return letter.task, [message.get("url"), message.get("payload")], ""
    try:
        parsed = parse_message(message)
    except ContractError as exc:
        return letter.task, [], f"the message breaks the contract ({exc}); fix the producer and send it anew"
    # The task of the message's own type: a message its producer sent to another type's task name
    # (dead-lettered as invalid_message) replays to the right one.
    return TASK_NAMES[parsed.type], [message], ""


def refetch_args(letter: Letter, refetch: Refetch) -> tuple[str, list[Any], str]:
    """The ``crm.contact_changed`` task that reloads the letter's contact, or why there is none. Pure."""
    changed = TASK_NAMES[MessageType.CHANGED]
    message = letter.message
    kind, source, crm_id = message.get("type"), message.get("source"), message.get("crm_contact_id")
    if letter.task == NOTIFY_TASK or not isinstance(kind, str) or kind not in REFETCHABLE:
        what = "a CRM callback" if letter.task == NOTIFY_TASK else f"a {kind or 'message without a type'}"
        return changed, [], f"{what} has nothing to reload from a CRM; replay it without --refetch"
    if not isinstance(source, str) or not source or crm_id in (None, ""):
        return changed, [], "the message names no CRM contact (source and crm_contact_id) to reload"
    if source not in refetch.sources:
        return changed, [], f"{refetch.why_not(source)}; {WITHOUT_CRM_API}"
    reload = {"v": 1, "type": MessageType.CHANGED.value, "source": source, "crm_contact_id": str(crm_id),
              "occurred_at": refetch.now, **({"dry_run": True} if message.get("dry_run") is True else {}),
              **({"tenant": message["tenant"]} if "tenant" in message else {})}  # fmt: skip
    try:
        parse_message(reload)
    except ContractError as exc:
        return changed, [], f"cannot reload this contact ({exc})"
    return changed, [reload], ""
