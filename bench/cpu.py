"""CPU time from /proc (Linux): of a process with its descendants, and of the whole machine.

``bench.tenants`` reads both at the start and the end of its window, to tell whether the workers'
CPU was the limit. Parsing is pure (``process_ticks``, ``machine_ticks``); reading is ``sample``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessTicks:
    """One /proc/<pid>/stat line: the parent pid and user + system CPU in clock ticks (all threads)."""

    pid: int
    ppid: int
    ticks: int


def process_ticks(stat_line: str) -> ProcessTicks:
    """Parse /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses."""
    head, _, rest = stat_line.rpartition(")")
    fields = rest.split()  # from field 3 (state) on: ppid is field 4, utime 14, stime 15
    return ProcessTicks(
        pid=int(head.split("(", 1)[0]), ppid=int(fields[1]), ticks=int(fields[11]) + int(fields[12])
    )


def machine_ticks(stat_text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all cores from /proc/stat's ``cpu`` line (idle and iowait are not busy)."""
    line = next(line for line in stat_text.splitlines() if line.startswith("cpu "))
    values = [int(v) for v in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    return total - values[3] - values[4], total


def tree_ticks(processes: Iterable[ProcessTicks], roots: Iterable[int]) -> int:
    """CPU ticks of ``roots`` and every descendant among ``processes``."""
    children: dict[int, list[ProcessTicks]] = {}
    by_pid: dict[int, ProcessTicks] = {}
    for proc in processes:
        by_pid[proc.pid] = proc
        children.setdefault(proc.ppid, []).append(proc)
    todo, total, seen = list(roots), 0, set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in by_pid:
            continue
        seen.add(pid)
        total += by_pid[pid].ticks
        todo.extend(child.pid for child in children.get(pid, []))
    return total


def _all_processes() -> list[ProcessTicks]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                found.append(process_ticks((entry / "stat").read_text()))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


@dataclass(frozen=True)
class Sample:
    """CPU seconds so far of each named group of processes, and the machine's busy/total seconds."""

    groups: Mapping[str, float]
    busy: float
    total: float


def sample(groups: Mapping[str, Iterable[int]]) -> Sample:
    """CPU seconds used so far by each group of process trees (e.g. ``{"workers": [pid, pid]}``)."""
    hz = os.sysconf("SC_CLK_TCK")
    processes = _all_processes()
    busy, total = machine_ticks((PROC / "stat").read_text())
    used = {name: tree_ticks(processes, pids) / hz for name, pids in groups.items()}
    return Sample(groups=used, busy=busy / hz, total=total / hz)


@dataclass(frozen=True)
class Usage:
    """Cores used on average between two samples, per group and by the whole machine."""

    cores: Mapping[str, float]
    machine_busy: float  # share of all cores' time that was busy, 0..1
    seconds: float


def usage(before: Sample, after: Sample, seconds: float) -> Usage:
    """Average cores per group over ``seconds`` of wall clock, and the machine's busy share."""
    cores = {name: (after.groups[name] - before.groups.get(name, 0.0)) / seconds for name in after.groups}
    spent = after.total - before.total
    return Usage(cores, (after.busy - before.busy) / spent if spent > 0 else 0.0, seconds)
