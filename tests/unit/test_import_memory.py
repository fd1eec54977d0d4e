"""A file import streams: its memory does not grow with the file (a 10x longer file, the same peak)."""

from __future__ import annotations

import io
import itertools
import tracemalloc
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from ktsync.producers.imports import CsvLayout, csv_messages, run_import


class CountingEnqueuer:
    """Stands in for the broker: takes each chunk and keeps nothing (the import is what is measured)."""

    def __init__(self) -> None:
        self.enqueued = 0

    def enqueue_many(self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False) -> list[str]:
        self.enqueued += sum(1 for _ in messages)
        return []


class GeneratedCsv(io.TextIOBase):
    """A CSV file of ``rows`` contacts, produced line by line (never held in memory at once)."""

    def __init__(self, rows: int) -> None:
        self._lines: Iterator[str] = itertools.chain(
            ["id,email,firstname,lifecyclestage,lists\n"],
            (f"{i},c{i}@shop.example,Name {i},lead,A;B\n" if i % 100 else f"{i},broken,X,lead,A\n" for i in range(rows)),
        )  # fmt: skip

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        return next(self._lines, "")

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def peak_bytes(rows: int) -> tuple[int, int, int]:
    layout = CsvLayout("hubspot", list_columns=frozenset({"lists"}))
    enqueuer = CountingEnqueuer()
    tracemalloc.start()
    report = run_import(csv_messages(GeneratedCsv(rows), layout), enqueuer)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, enqueuer.enqueued, report.rejected


@pytest.mark.slow
def test_memory_stays_flat_from_2000_to_20000_rows() -> None:
    small_peak, small_enqueued, small_rejected = peak_bytes(2_000)
    large_peak, large_enqueued, large_rejected = peak_bytes(20_000)

    assert (small_enqueued, small_rejected) == (1_980, 20)
    assert (large_enqueued, large_rejected) == (19_800, 200)
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)
