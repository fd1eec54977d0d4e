"""What ``bench.tenants`` measured, the figures made from it, and the printed report."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.cpu import Usage
from bench.figures import Window, aggregate_share, jain_index, percentile, rates, refusals

CPU_LIMIT = 0.9  # a machine this busy, or a worker process this close to one core (the GIL), is CPU-bound


@dataclass(frozen=True)
class Measured:
    """One scenario's raw results: the fake's log, the live changes' times, imports done, CPU used."""

    scenario: str
    importers: tuple[str, ...]
    quiet: tuple[str, ...]
    window: Window  # the steady window (server clock): rates and CPU are over it
    log: list[dict[str, Any]]
    enqueued_at: Mapping[tuple[str, str], float]  # (tenant, crm id) -> time.time() of the enqueue
    latencies: Mapping[tuple[str, str], float]  # of the changes applied, seconds
    unsynced: int
    imported: Mapping[str, int]  # bulk contacts applied per importer by the end
    cpu: Usage


@dataclass(frozen=True)
class Figures:
    latencies: list[float]
    calls_per_change: float  # accepted calls of the quiet tenants per live change, in the steady window
    achieved: dict[str, float]  # accepted calls/s per tenant over the steady window
    capacity: dict[str, float]  # what each could use: R while backlogged, else its demand (capped at R)
    backlogged: tuple[str, ...]  # importers whose import was not done by the end
    aggregate: float
    fairness: float
    too_many: dict[str, int]


def figures(m: Measured, *, budget: float, import_size: int) -> Figures:
    """The figures of one scenario (see the module docstring of ``bench.tenants``).

    A quiet tenant's demand is what it used: it has no backlog, each change is applied within seconds
    (the latency says how quickly), so the calls it got are the calls its changes needed.
    """
    tenants = m.importers + m.quiet
    steady = rates(m.log, m.window)
    achieved = {t: steady.get(t, 0.0) for t in tenants}
    changes = sum(1 for ts in m.enqueued_at.values() if m.window.holds(ts))
    per_change = sum(achieved[t] for t in m.quiet) * m.window.seconds / max(1, changes)
    backlogged = tuple(t for t in m.importers if m.imported.get(t, 0) < import_size)
    capacity = {t: min(budget, achieved[t]) for t in m.quiet}
    capacity.update({t: budget if t in backlogged else achieved[t] for t in m.importers})
    refused = refusals(m.log)
    return Figures(
        latencies=sorted(m.latencies.values()),
        calls_per_change=per_change,
        achieved=achieved,
        capacity=capacity,
        backlogged=backlogged,
        aggregate=aggregate_share(achieved, capacity),
        fairness=jain_index(achieved[t] / budget for t in backlogged),
        too_many={t: refused[t] for t in tenants},
    )


def cpu_verdict(usage: Usage, workers: int) -> tuple[str, bool]:
    """One line on the CPU over the window, and whether CPU was the limit: the machine (shared, so
    other users count too) at least 90 % busy, or a worker process near one core (its GIL)."""
    worker_cores = [v for k, v in usage.cores.items() if k.startswith("worker")]
    busiest, cores = max(worker_cores, default=0.0), os.cpu_count() or 1
    ours = usage.cores.get("bench", 0.0)  # the bench process and everything it started
    rest = ours - sum(worker_cores) - usage.cores.get("fake", 0.0)
    others = max(0.0, usage.machine_busy * cores - ours)
    line = (f"workers {sum(worker_cores):.2f} cores ({workers} processes, busiest {busiest:.2f}), fake "
            f"{usage.cores.get('fake', 0.0):.2f}, Redis + this bench {rest:.2f}, other processes {others:.2f}; "
            f"machine {100 * usage.machine_busy:.0f}% busy of {cores} cores")  # fmt: skip
    return line, usage.machine_busy >= CPU_LIMIT or busiest >= CPU_LIMIT


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{v:.2f}" for v in (statistics.median(values), percentile(values, 0.95), values[-1]))


def print_scenario(m: Measured, f: Figures, args: argparse.Namespace) -> dict[str, bool]:
    budget = args.budget
    print(f"\n[{m.scenario}] rates over {m.window.seconds:.0f} s (the window without its first seconds)")
    own = f.calls_per_change / budget
    print(f"  quiet tenants' latency p50 / p95 / max: {_ms(f.latencies)} s ({len(f.latencies)} changes applied, "
          f"{m.unsynced} not synced); own calls per change {f.calls_per_change:.2f} = {own:.2f} s at R")  # fmt: skip
    print(f"  {'tenant':<8}{'role':<8}{'calls/s':>8}{'/R':>6}{'429s':>6}{'imported':>10}")
    shown = m.importers + (m.quiet if args.per_tenant else ())
    for t in shown:
        role = "import" if t in m.importers else "quiet"
        done = str(m.imported.get(t, "")) if t in m.importers else ""
        print(
            f"  {t:<8}{role:<8}{f.achieved[t]:>8.2f}{f.achieved[t] / budget:>6.2f}{f.too_many[t]:>6}{done:>10}"
        )
    quiet = sorted(f.achieved[t] for t in m.quiet)
    if quiet and not args.per_tenant:
        print(f"  quiet ({len(quiet)}): calls/s min {quiet[0]:.2f} / median {statistics.median(quiet):.2f} / max "
              f"{quiet[-1]:.2f} (/R {quiet[0] / budget:.2f}..{quiet[-1] / budget:.2f}), 429s {sum(f.too_many[t] for t in m.quiet)}")  # fmt: skip
    used, could = sum(f.achieved.values()), sum(f.capacity.values())
    backlogged_budget = budget * len(f.backlogged)
    print(f"  aggregate: {used:.1f} calls/s of {could:.1f} usable (R x {len(f.backlogged)} backlogged = "
          f"{backlogged_budget:g}, quiet demand {could - backlogged_budget:.1f}) = {f.aggregate:.2f}")  # fmt: skip
    trivial = " (trivially 1: one backlogged tenant)" if len(f.backlogged) == 1 else ""
    print(
        f"  fairness (Jain over {len(f.backlogged)} backlogged tenants' calls/s / R): {f.fairness:.3f}{trivial}"
    )
    line, limited = cpu_verdict(m.cpu, args.workers)
    print(f"  CPU over the window: {line} -> {'CPU IS the limit' if limited else 'CPU is not the limit'}")
    p95 = percentile(f.latencies, 0.95)
    return {
        "latency": p95 <= 2.0 + own and m.unsynced == 0,
        "aggregate": f.aggregate >= 0.9,
        "fairness": f.fairness >= 0.95,
        "cpu_limited": limited,
        "fairness_trivial": len(f.backlogged) <= 1,
    }


def report(results: list[Measured], args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cores; {args.tenants} tenants, each its own account in the fake KlickTipp: "
          f"R = {args.budget:g} req/s, burst {args.burst} per account (429 above it); ktsync rate.per_second = R, "
          f"burst {args.burst}, max_in_flight {args.max_in_flight} per tenant; {args.workers} x `ktsync worker -P "
          f"threads -c{args.concurrency}`; each importer: {args.import_size} new contacts in the bulk lane; each quiet "
          f"tenant: one live change (a new contact) every {args.live_every:g} s")  # fmt: skip
    verdicts = []
    for m in results:
        f = figures(m, budget=args.budget, import_size=args.import_size)
        verdicts.append((m, print_scenario(m, f, args)))
    print("\ngoals: quiet p95 <= 2 s + own calls, every change synced; aggregate >= 0.9 (while CPU is not the "
          "limit); fairness >= 0.95")  # fmt: skip
    for m, v in verdicts:
        fairness = "trivial" if v["fairness_trivial"] else ("met" if v["fairness"] else "NOT met")
        aggregate = "met" if v["aggregate"] else ("NOT met (CPU-bound)" if v["cpu_limited"] else "NOT met")
        print(f"  [{m.scenario}] latency {'met' if v['latency'] else 'NOT met'}; aggregate {aggregate}; "
              f"fairness {fairness}")  # fmt: skip
