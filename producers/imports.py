"""File imports (JSON lines or CSV) into the queue, streaming: memory stays flat however long the file.

A CSV row becomes a ``contact.upsert`` message: the id column is the CRM contact id, the e-mail and
SMS columns the identity, every other column (or those named by ``--map``) a property. Rejected
lines are counted by (field, reason) and the first of them are kept with their line numbers.

A ``tenant`` (``--tenant``) is carried into every message that names none; whether the tenant takes
messages, and whether a line naming another one may go, is the producer's ``admit`` (a rejection per
line, field ``tenant``).

Both formats read the same way: a UTF-8 byte order mark at the start is ignored, and the e-mail
address and SMS number are trimmed of surrounding white space (a JSON line's as a CSV cell's).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, Protocol

from ktsync.core.contract import ContractError, FieldError, parse_message
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.producers.enqueue import EnqueueError

CHUNK = 500
KEPT_REJECTIONS = 100
BOM = "\ufeff"
TRIMMED = ("email", "sms_number")  # identity fields a spreadsheet or an export pads with spaces


class Enqueuer(Protocol):
    def enqueue_many(
        self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> list[str]: ...


@dataclass(frozen=True)
class CsvLayout:
    """How CSV columns become a message."""

    source: str
    id_column: str = "id"
    email_column: str = "email"
    sms_column: str | None = None
    occurred_at_column: str | None = None
    list_columns: frozenset[str] = frozenset()  # cells split on ``list_separator`` into lists
    list_separator: str = ";"
    mapping: Mapping[str, str] = field(default_factory=dict)  # column -> property; empty: all columns
    tenant: str = DEFAULT_TENANT  # whose contacts these are (``default``: left implicit)


@dataclass
class ImportReport:
    read: int = 0
    enqueued: int = 0
    rejected: int = 0
    skipped: int = 0  # lines before ``start_line``
    last_read: int = 0
    done_through: int = 0  # every line up to this one is enqueued or rejected (where to resume)
    # (first, last) line of the chunk being enqueued when it failed: some of it may be queued
    in_doubt: tuple[int, int] | None = None
    start_line: int = 1
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_rejections: list[tuple[int, str]] = field(default_factory=list)
    keep: int | None = KEPT_REJECTIONS  # rejections kept with their line (None: all of them)

    @property
    def resume_at(self) -> int:
        """The ``--start-line`` that goes on where this run stopped."""
        return max(self.done_through + 1, self.start_line)

    def reject(self, line: int, errors: Iterable[FieldError]) -> None:
        errors = list(errors)
        self.rejected += 1
        self.reasons.update((e.field, _general(e.reason)) for e in errors)
        if self.keep is None or len(self.first_rejections) < self.keep:
            self.first_rejections.append((line, "; ".join(str(e) for e in errors)))


def _general(reason: str) -> str:
    """A reason without the offending value, so that rejections group ("got 'X'" varies)."""
    return reason.split(" (got ", 1)[0]


def jsonl_messages(
    lines: Iterable[str], source: str | None, tenant: str = DEFAULT_TENANT
) -> Iterator[tuple[int, Any]]:
    """(line number, decoded message); ``source`` fills in a missing ``source``, ``tenant`` a missing
    ``tenant`` (``default`` is left implicit)."""
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(BOM)
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            yield number, _Broken(f"not valid JSON ({exc})")
            continue
        if isinstance(data, dict):
            if source:
                data.setdefault("source", source)
            if tenant != DEFAULT_TENANT:
                data.setdefault("tenant", tenant)
            data.update({key: data[key].strip() for key in TRIMMED if isinstance(data.get(key), str)})
        yield number, data


def csv_messages(
    stream: IO[str], layout: CsvLayout, now: Callable[[], float] = time.time
) -> Iterator[tuple[int, Any]]:
    """(line number, message) per CSV row (the header is line 1)."""
    reader = csv.DictReader(stream)
    if reader.fieldnames:  # a BOM the stream's encoding kept (utf-8 rather than utf-8-sig)
        reader.fieldnames = [reader.fieldnames[0].removeprefix(BOM), *reader.fieldnames[1:]]
    missing = {layout.id_column} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(
            f"the CSV has no column {', '.join(sorted(missing))} (columns: {', '.join(reader.fieldnames or ())})"
        )
    for row in reader:
        yield reader.line_num, row_message(row, layout, now())


def row_message(row: Mapping[str, str | None], layout: CsvLayout, now: float) -> dict[str, Any]:
    """One CSV row as a contract v1 ``contact.upsert`` (not validated here)."""
    identity = {layout.id_column, layout.email_column, layout.sms_column, layout.occurred_at_column}
    columns = layout.mapping or {c: c for c in row if c not in identity and c is not None}
    properties: dict[str, Any] = {}
    for column, prop in columns.items():
        value = (row.get(column) or "").strip()
        if column in layout.list_columns:
            properties[prop] = [item.strip() for item in value.split(layout.list_separator) if item.strip()]
        elif value:
            properties[prop] = value
    message: dict[str, Any] = {
        "v": 1,
        "type": "contact.upsert",
        "source": layout.source,
        "crm_contact_id": (row.get(layout.id_column) or "").strip(),
        "properties": properties,
        "occurred_at": (row.get(layout.occurred_at_column) or "").strip()
        if layout.occurred_at_column
        else now,
    }
    if layout.tenant != DEFAULT_TENANT:
        message["tenant"] = layout.tenant
    email = (row.get(layout.email_column) or "").strip()
    sms = (row.get(layout.sms_column) or "").strip() if layout.sms_column else ""
    return {**message, **({"email": email} if email else {}), **({"sms_number": sms} if sms else {})}


@dataclass(frozen=True)
class _Broken:
    reason: str


def run_import(
    messages: Iterable[tuple[int, Any]],
    producer: Enqueuer,
    on_progress: Callable[[int], None] | None = None,
    *,
    keep: int | None = KEPT_REJECTIONS,
    room: Callable[[int], object] | None = None,
    chunk_size: int = CHUNK,
    start_line: int = 1,
    report: ImportReport | None = None,
    admit: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> ImportReport:
    """Validate each message, enqueue the valid ones in chunks, count the rejected ones (and keep the
    first ``keep`` with their line numbers; None keeps all; a ``report`` passed in has its own ``keep``).

    ``room(n)`` is called before each chunk of ``n`` and may block (flow control for the bulk lane);
    lines before ``start_line`` are read but neither validated nor enqueued (resuming an import).
    Pass ``report`` to see how far an interrupted import got: ``done_through`` is the last line
    every line before which was handled, ``in_doubt`` the lines whose enqueue failed half-way.
    ``admit(message)`` (e.g. ``Producer.admit``) checks each contract-valid message further and may
    change it (its tenant); the ``ContractError`` it raises rejects that line."""
    report = ImportReport(keep=keep) if report is None else report
    report.start_line = start_line
    valid = _validated(messages, report, on_progress, start_line, admit)
    while chunk := list(islice(valid, chunk_size)):
        if room is not None:
            room(len(chunk))
        report.in_doubt = (chunk[0][0], chunk[-1][0])
        try:
            producer.enqueue_many([message for _, message in chunk], validated=True)
        except EnqueueError as exc:
            report.in_doubt = report.in_doubt if exc.uncertain else None
            raise
        report.in_doubt = None
        report.enqueued += len(chunk)
        report.done_through = chunk[-1][0]
    report.done_through = max(report.done_through, report.last_read)
    return report


def _validated(
    messages: Iterable[tuple[int, Any]],
    report: ImportReport,
    on_progress: Callable[[int], None] | None,
    start_line: int,
    admit: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, message in messages:
        report.last_read = number
        if on_progress is not None:
            on_progress(number)
        if number < start_line:
            report.skipped += 1
            continue
        report.read += 1
        if isinstance(message, _Broken):
            report.reject(number, [FieldError("$", message.reason)])
            continue
        try:
            parse_message(message)
            admitted = message if admit is None else admit(message)
        except ContractError as exc:
            report.reject(number, exc.errors)
            continue
        yield number, admitted


def stopped_summary(report: ImportReport) -> str:
    """How far a stopped import or enqueue got, in one line: what is done and what may be queued."""
    if report.done_through == 0:
        done = "nothing was enqueued"
    else:
        skipped = f", {report.skipped} skipped" if report.skipped else ""
        done = f"lines 1-{report.done_through} are done ({report.enqueued} enqueued, {report.rejected} rejected{skipped})"
    if report.in_doubt is None:
        return done
    first, last = report.in_doubt
    return f"{done}; lines {first}-{last} were being enqueued and may be queued in part"
