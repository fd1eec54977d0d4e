"""Enqueue a JSON-lines stream: valid lines go to the queue, rejected ones are reported by line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from ktsync.contract import ContractError, parse_message

CHUNK = 500


class Enqueuer(Protocol):
    def enqueue_many(self, messages: Iterable[dict[str, Any]], *, validated: bool = False) -> list[str]: ...


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class Report:
    enqueued: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)


def enqueue_lines(lines: Iterable[str], producer: Enqueuer) -> Report:
    """Validate every line; enqueue the valid ones in chunks (flat memory for big files)."""
    report = Report()
    valid = _valid_messages(lines, report)
    while chunk := list(islice(valid, CHUNK)):
        report.task_ids.extend(producer.enqueue_many(chunk, validated=True))
        report.enqueued += len(chunk)
    return report


def _valid_messages(lines: Iterable[str], report: Report) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            parse_message(data)
        except ValueError as exc:  # ContractError is a ValueError, and so is a JSON decode error
            reason = str(exc) if isinstance(exc, ContractError) else f"$: not valid JSON ({exc})"
            report.rejected.append(Rejection(number, reason))
            continue
        yield data
