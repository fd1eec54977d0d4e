"""Replay dead letters: publish each original message again, marked so the worker can clear the entry.

The entry stays in the dead-letter store until its replayed task succeeds (the worker removes it
then); a replay that fails again comes back with the new error and its replay count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ktsync.contract import ContractError, parse_message

NOTIFY_TASK = "ktsync.notify_crm"
CHUNK = 500


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


def replay(
    letters: Iterable[Letter],
    sender: Sender,
    *,
    dry_run: bool = False,
    room: Callable[[int], object] | None = None,
    chunk: int = CHUNK,
) -> list[ReplayResult]:
    """Publish each letter's message again with ``replay_of``; refuse what cannot succeed as it is.

    ``room(n)`` is called before every ``chunk`` replays and may block (the bulk lane's flow control)."""
    results = []
    sent = 0
    for letter in letters:
        args, problem = _task_args(letter)
        if problem or dry_run:
            results.append(ReplayResult(letter.id, None, problem))
            continue
        if room is not None and sent % chunk == 0:
            room(chunk)
        task_id = sender.send(letter.task, args, {"replay_of": letter.id}, str(uuid.uuid4()))
        sent += 1
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
