"""Replay dead letters: publish each original message again, marked so the worker can clear the entry.

The entry stays in the dead-letter store until its replayed task succeeds (the worker removes it
then); a replay that fails again comes back with the new error and its replay count.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ktsync.contract import ContractError, parse_message

NOTIFY_TASK = "ktsync.notify_crm"


class Letter(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def task(self) -> str: ...

    @property
    def message(self) -> Mapping[str, Any]: ...


class Sender(Protocol):
    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str: ...


@dataclass(frozen=True)
class ReplayResult:
    letter_id: str
    task_id: str | None
    problem: str = ""


def replay(letters: Iterable[Letter], sender: Sender, *, dry_run: bool = False) -> list[ReplayResult]:
    """Publish each letter's message again with ``replay_of``; refuse what cannot succeed as it is."""
    results = []
    for letter in letters:
        args, problem = _task_args(letter)
        if problem or dry_run:
            results.append(ReplayResult(letter.id, None, problem))
            continue
        task_id = sender.send(letter.task, args, {"replay_of": letter.id}, str(uuid.uuid4()))
        results.append(ReplayResult(letter.id, task_id))
    return results


def _task_args(letter: Letter) -> tuple[list[Any], str]:
    message = dict(letter.message)
    if letter.task == NOTIFY_TASK:
        return [message.get("url"), message.get("payload")], ""
    try:
        parse_message(message)
    except ContractError as exc:
        return [], f"the message breaks the contract ({exc}); fix the producer and send it anew"
    return [message], ""
