"""Imports read JSON lines and CSV alike (BOM, padded addresses), and a stopped one says how far it got."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from ktsync.producers.enqueue import EnqueueError
from ktsync.producers.imports import (
    CsvLayout,
    ImportReport,
    csv_messages,
    jsonl_messages,
    run_import,
    stopped_summary,
)

NOW = 1_795_341_600.0


class Recorder:
    """An Enqueuer that keeps what it is given, and fails on the call number ``fail_on`` (1-based)."""

    def __init__(self, fail_on: int | None = None, *, uncertain: bool = True) -> None:
        self.batches: list[list[Mapping[str, Any]]] = []
        self.fail_on, self.uncertain = fail_on, uncertain

    def enqueue_many(self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False) -> list[str]:
        batch = list(messages)
        if self.fail_on is not None and len(self.batches) + 1 == self.fail_on:
            raise EnqueueError("could not enqueue: Redis is unreachable (Connection refused)",
                               uncertain=self.uncertain)  # fmt: skip
        self.batches.append(batch)
        return [str(i) for i in range(len(batch))]

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        return [m for batch in self.batches for m in batch]


def jsonl_line(crm_id: str, email: str) -> str:
    return json.dumps({"v": 1, "type": "contact.upsert", "crm_contact_id": crm_id, "email": email,
                       "properties": {"firstname": "Alex"}, "occurred_at": NOW})  # fmt: skip


def test_a_padded_address_is_trimmed_the_same_in_json_lines_and_csv() -> None:
    # Given the same contact with a padded address and SMS number, once as a JSON line, once as a CSV row
    line = json.dumps({"v": 1, "type": "contact.upsert", "crm_contact_id": "7", "email": "  alex@shop.example ",
                       "sms_number": " +4917012345678 ", "properties": {"firstname": "Alex"}, "occurred_at": NOW})  # fmt: skip
    csv_text = 'id,email,sms,firstname\n7,"  alex@shop.example ", +4917012345678 ,Alex\n'
    layout = CsvLayout("hubspot", sms_column="sms")

    # When both are imported
    from_jsonl, from_csv = Recorder(), Recorder()
    jsonl_report = run_import(jsonl_messages([line], "hubspot"), from_jsonl)
    csv_report = run_import(csv_messages(io.StringIO(csv_text), layout, now=lambda: NOW), from_csv)

    # Then both are accepted, with the same trimmed identity
    assert (jsonl_report.rejected, csv_report.rejected) == (0, 0), jsonl_report.first_rejections
    [jsonl_message], [csv_message] = from_jsonl.messages, from_csv.messages
    assert jsonl_message["email"] == csv_message["email"] == "alex@shop.example"
    assert jsonl_message["sms_number"] == csv_message["sms_number"] == "+4917012345678"


def test_a_byte_order_mark_at_the_start_of_a_json_lines_file_is_ignored() -> None:
    lines = [
        "\ufeff" + jsonl_line("1", "one@shop.example") + "\n",
        jsonl_line("2", "two@shop.example") + "\n",
    ]

    recorder = Recorder()
    report = run_import(jsonl_messages(lines, "hubspot"), recorder)

    assert (report.enqueued, report.rejected) == (2, 0), report.first_rejections


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_byte_order_mark_at_the_start_of_a_csv_file_is_ignored(encoding: str) -> None:
    # Given a CSV as a spreadsheet exports it: a BOM before the first column name
    raw = "\ufeffid,email\n1,one@shop.example\n".encode()
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="")

    recorder = Recorder()
    report = run_import(csv_messages(stream, CsvLayout("hubspot"), now=lambda: NOW), recorder)

    assert (report.enqueued, report.rejected) == (1, 0), report.first_rejections
    assert recorder.messages[0]["crm_contact_id"] == "1"


def test_a_run_stopped_mid_way_says_what_is_done_and_which_lines_may_be_queued() -> None:
    # Given 12 lines enqueued in chunks of 5, the broker gone at the third chunk, after sending part of it
    lines = [jsonl_line(str(i), f"c{i}@shop.example") for i in range(1, 13)]
    report = ImportReport()

    with pytest.raises(EnqueueError):
        run_import(jsonl_messages(lines, "hubspot"), Recorder(fail_on=3), chunk_size=5, report=report)

    assert (report.enqueued, report.done_through, report.in_doubt, report.resume_at) == (10, 10, (11, 12), 11)
    assert stopped_summary(report) == (
        "lines 1-10 are done (10 enqueued, 0 rejected); lines 11-12 were being enqueued and may be queued in part"
    )


def test_a_run_that_never_reached_the_broker_has_nothing_in_doubt() -> None:
    lines = ["not json", jsonl_line("2", "two@shop.example")]
    report = ImportReport()

    with pytest.raises(EnqueueError):
        run_import(jsonl_messages(lines, "hubspot"), Recorder(fail_on=1, uncertain=False), report=report)

    assert (report.in_doubt, report.resume_at, report.rejected) == (None, 1, 1)
    assert stopped_summary(report) == "nothing was enqueued"


def test_a_resumed_run_counts_what_it_skipped_and_resumes_after_what_it_did() -> None:
    lines = [jsonl_line(str(i), f"c{i}@shop.example") for i in range(1, 9)]
    report = ImportReport()

    with pytest.raises(EnqueueError):
        run_import(jsonl_messages(lines, "hubspot"), Recorder(fail_on=2, uncertain=False), chunk_size=2,
                   start_line=4, report=report)  # fmt: skip

    assert (report.skipped, report.enqueued, report.done_through, report.resume_at) == (3, 2, 5, 6)
    assert stopped_summary(report) == "lines 1-5 are done (2 enqueued, 0 rejected, 3 skipped)"
