"""Rate adherence: 4 worker processes against a fake KlickTipp that enforces a budget, in one run.

    .venv/bin/python -m bench.rate [--budget 20] [--burst 5] [--contacts 200] [--deadline 35]
                                   [--limiter-burst B] [--celery-pool P] [--only LABEL ...]

The fake answers 429 + Retry-After above ``budget`` requests/s per account (a token bucket holding
``burst``). Every scenario gets a fresh fake, its own queue and Redis key prefix, and its whole backlog
queued before its workers start; it ends when the queue (and ktsync's parked schedule) is drained or
at ``--deadline`` seconds after the workers started, whichever comes first.

1. ``limiter-eq``     ktsync, limiter = budget: rate.per_second = R, same burst, max_wait 2 s (default)
2. ``limiter-150``    ktsync, limiter 1.5 R: does the account pause after a 429 prevent a storm?
3. ``max-wait-0``     ktsync, limiter = budget, max_wait 0: every wait becomes a requeue, no slot waits
4. ``celery-quarter`` Celery's own rate_limit (per worker process) at R/4, one POST per task
5. ``celery-naive``   the same at R per worker process

What the server saw comes from the fake's request log (server clock). Retries and dead letters come
from ktsync's outcome counters; requeues (``Throttled``) and how long worker slots waited in place
for the limiter from a timing wrapper around the limiter gate (``bench/rate_workers.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
import yaml
from celery import Celery

from bench.environment import bench_config, bench_env, consumed_lists
from bench.rate_workers import ONE_HTTP_TASK, gate_key
from bench.run import new_contact
from fake_klicktipp.testing import RunningFake, running_fake
from ktsync.config.celery import celery_config
from ktsync.config.settings import Settings, load_settings
from ktsync.core.redis_server import RedisHandle, resolve_redis
from ktsync.producers import Producer
from ktsync.queues import overall_status
from ktsync.worker.stats import RedisStats

ROOT = Path(__file__).resolve().parents[1]
RATE_ENV = ("KTSYNC_RATE_LIMIT", "KTSYNC_RATE_BURST", "KTSYNC_MAX_IN_FLIGHT")  # the scenario file rules


@dataclass(frozen=True)
class Scenario:
    label: str
    title: str
    limiter: float = 0.0  # ktsync rate.per_second; 0 = a Celery baseline
    max_wait: float = 2.0
    task_rate: str = ""  # Celery rate_limit per worker process


@dataclass(frozen=True)
class Bench:
    store: RedisHandle
    fake: RunningFake
    config: Path
    args: argparse.Namespace


@dataclass
class Measured:
    scenario: Scenario
    command: str
    items: int
    slots: int  # worker threads in all
    log: list[tuple[float, int]]  # (server time.time(), status) of every API request
    end: float  # time.time() when the backlog was drained, or the workers stopped at the deadline
    stats: dict[str, int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)  # seconds each KlickTipp call waited in its slot
    gate: dict[str, int] = field(default_factory=dict)


def scenarios(budget: float) -> list[Scenario]:
    return [
        Scenario("limiter-eq", "ktsync, limiter = budget", limiter=budget),
        Scenario("limiter-150", "ktsync, limiter 1.5x budget", limiter=1.5 * budget),
        Scenario("max-wait-0", "ktsync, limiter = budget, max_wait 0", limiter=budget, max_wait=0.0),
        Scenario("celery-quarter", "Celery rate_limit R/4 per worker", task_rate=f"{budget / 4:g}/s"),
        Scenario("celery-naive", "Celery rate_limit R per worker (naive)", task_rate=f"{budget:g}/s"),
    ]


def limiter_burst(args: argparse.Namespace) -> int:
    return int(args.limiter_burst or args.burst)


def scenario_env(bench: Bench, scenario: Scenario) -> dict[str, str]:
    """The bench's env with a config file of the scenario's own: queue, key prefix, rate settings."""
    document = yaml.safe_load(bench.config.read_text(encoding="utf-8"))
    name = f"ktsync-rate-{scenario.label}"
    document["redis"]["key_prefix"] = name
    document["worker"]["queue"] = name
    args = bench.args
    document["rate"].update(per_second=scenario.limiter or args.budget, burst=limiter_burst(args),
                            max_in_flight=args.max_in_flight, max_wait=scenario.max_wait)  # fmt: skip
    path = bench.config.parent / f"{scenario.label}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    env = bench_env(os.environ, redis_url=bench.store.url, base_url=bench.fake.base_url, config=path)
    for variable in RATE_ENV:
        env.pop(variable, None)
    return {**env, "BENCH_TASK_RATE_LIMIT": scenario.task_rate}


def fresh_fake(bench: Bench) -> None:
    """Seed data back, request log empty, a full server bucket with the budget."""
    bench.fake.control.reset()
    bench.fake.control.faults(rate_limit={"per_second": bench.args.budget, "burst": bench.args.burst})


def backlog(client: redis.Redis, settings: Settings) -> int:
    """Tasks not done yet: pending, running, waiting for a countdown, parked or deferred (every lane)."""
    status = overall_status(client, settings, time.time())
    return status.pending + status.in_flight + status.scheduled + status.parked + status.deferred


def run_workers(argvs: list[list[str]], env: Mapping[str, str], settings: Settings, deadline: float) -> float:
    """Start the workers, wait until the backlog is gone or the deadline, stop them.

    Returns when the backlog was gone or, at the deadline, when the workers had stopped (a warm
    shutdown lets running tasks finish, and they count).
    """
    client = redis.Redis.from_url(settings.redis_url)
    drained = 0.0
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in argvs]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for argv, log in zip(argvs, logs, strict=True):
                procs.append(subprocess.Popen([sys.executable, *argv], env=dict(env), cwd=ROOT,
                                              stdout=subprocess.DEVNULL, stderr=log))  # fmt: skip
            stop_at = time.monotonic() + deadline
            while backlog(client, settings) and time.monotonic() < stop_at:
                if any(p.poll() is not None for p in procs):
                    logs[0].seek(0)
                    raise RuntimeError(f"a worker exited:\n{logs[0].read()[-3000:].decode(errors='replace')}")
                time.sleep(0.05)
            drained = 0.0 if backlog(client, settings) else time.time()
        finally:
            stop(procs)
            client.delete(*consumed_lists(settings))
            client.close()
    return drained or time.time()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ktsync(bench: Bench, scenario: Scenario) -> Measured:
    args = bench.args
    env = scenario_env(bench, scenario)
    settings = load_settings(env)
    fresh_fake(bench)
    with Producer(settings) as producer:
        producer.enqueue_many(
            {**new_contact(i), "crm_contact_id": f"{scenario.label}-{i}", "email": f"{scenario.label}-{i}@bench.example"}
            for i in range(args.contacts)
        )  # fmt: skip
    argv = ["-m", "bench.rate_workers", "-P", "threads", f"-c{args.concurrency}", "-l", "WARNING", "-q"]
    workers = [[*argv, "-n", f"rate{n}@%h"] for n in range(args.workers)]
    end = run_workers(workers, env, settings, args.deadline)
    client = redis.Redis.from_url(settings.redis_url)
    key = gate_key(settings.key_prefix)
    command = (f"{args.workers}x python -m ktsync worker {' '.join(argv[2:])}; rate: per_second={scenario.limiter:g} "
               f"burst={limiter_burst(args)} max_in_flight={args.max_in_flight} max_wait={scenario.max_wait:g}")  # fmt: skip
    waits = [float(w) for w in client.lrange(f"{key}:waits", 0, -1)]
    gate = {k.decode(): int(v) for k, v in client.hgetall(key).items()}  # type: ignore[union-attr]
    stats = RedisStats(client, settings.key_prefix).snapshot()
    client.close()
    return Measured(
        scenario,
        command,
        args.contacts,
        args.workers * args.concurrency,
        server_log(bench),
        end,
        stats,
        waits,
        gate,
    )


def run_celery(bench: Bench, scenario: Scenario) -> Measured:
    args = bench.args
    env = scenario_env(bench, scenario)
    settings = load_settings(env)
    fresh_fake(bench)
    app = Celery("bench-rate-producer", set_as_current=False)
    app.conf.update(celery_config(settings))
    with app.producer_or_acquire() as producer:
        for i in range(args.tasks):
            email = f"{scenario.label}-{i}@bench.example"
            app.send_task(ONE_HTTP_TASK, args=[email], queue=settings.worker.queue, producer=producer)
    argv = ["-m", "celery", "-A", "bench.rate_workers", "--quiet", "worker", "-P", args.celery_pool,
            f"-c{args.concurrency}", f"-Q{settings.worker.queue}", "--without-mingle", "-l", "ERROR"]  # fmt: skip
    workers = [[*argv, "-n", f"base{n}@%h"] for n in range(args.workers)]
    end = run_workers(workers, env, settings, args.deadline)
    command = f"{args.workers}x celery -A bench.rate_workers worker {' '.join(argv[6:])}; task rate_limit={scenario.task_rate}"
    return Measured(scenario, command, args.tasks, args.workers * args.concurrency, server_log(bench), end)


def server_log(bench: Bench) -> list[tuple[float, int]]:
    return [(float(r["ts"]), int(r["status"])) for r in bench.fake.control.requests()]


@dataclass(frozen=True)
class ServerView:
    requests: int
    ok: int
    rate: float  # accepted requests/s in the steady window (the first and the last second left out)
    too_many: int
    share_after_first: float  # 429s among the requests after the first second
    peak_429: int  # most 429s in one one-second window: a retry storm shows here
    window_min: int
    window_max: int


def server_view(log: list[tuple[float, int]]) -> ServerView:
    t0, t_end = log[0][0], log[-1][0]
    lo, hi = (t0 + 1, t_end - 1) if t_end - t0 > 4 else (t0, t_end)
    after = [status for ts, status in log if ts >= t0 + 1]
    windows = max(1, int(t_end - t0))  # whole one-second windows from the first request on
    counts, too_many = [0] * windows, [0] * windows
    for ts, status in log:
        if (k := int(ts - t0)) < windows:
            counts[k] += 1
            too_many[k] += status == 429
    total_429 = sum(1 for _, status in log if status == 429)
    return ServerView(
        requests=len(log),
        ok=len(log) - total_429,
        rate=sum(1 for ts, status in log if lo <= ts <= hi and status != 429) / max(hi - lo, 1e-9),
        too_many=total_429,
        share_after_first=sum(1 for s in after if s == 429) / max(1, len(after)),
        peak_429=max(too_many),
        window_min=min(counts),
        window_max=max(counts),
    )


def print_report(results: list[Measured], args: argparse.Namespace) -> None:
    budget = args.budget
    print(f"machine: {os.cpu_count()} cores; fake KlickTipp: R = {budget:g} req/s, burst {args.burst} per account "
          f"(429 + Retry-After above it); {args.workers} worker processes x {args.concurrency} threads; "
          f"deadline {args.deadline:g} s per scenario")  # fmt: skip
    print("\ncommands and settings:")
    for m in results:
        print(f"  [{m.scenario.label}] {m.command}")
    print(f"\nwhat the server saw (ok/s over the steady window: first and last second left out; 1-s windows:\n"
          f"whole seconds from the first request, all statuses; the first holds the burst, <= R + burst = {budget + args.burst:g})")  # fmt: skip
    print(f"  {'scenario':<39}{'requests':>8}{'ok/s':>7}{'ok/R':>6}{'429s':>6}{'429% >1s':>9}"
          f"{'429 peak/s':>11}{'1-s min':>8}{'1-s max':>8}")  # fmt: skip
    for m in results:
        v = server_view(m.log)
        print(f"  {m.scenario.title:<39}{v.requests:>8}{v.rate:>7.1f}{v.rate / budget:>6.2f}{v.too_many:>6}"
              f"{100 * v.share_after_first:>8.1f}%{v.peak_429:>11}{v.window_min:>8}{v.window_max:>8}")  # fmt: skip
    print(
        "\nwhat the workers did\n"
        "  time = first KlickTipp request to backlog drained or, at the deadline, to the workers stopped; done/s = done / time\n"
        "  lost = dead-lettered (ktsync) or failed by a 429 (Celery baseline, no retry); req/done = accepted requests per done item\n"
        "  retried = failed attempts (a 429 counts); requeued = Throttled by the limiter (no failure counted)\n"
        "  wait = how long a KlickTipp call held its worker thread waiting for the limiter (granted or Throttled):\n"
        "  per call p50/p95/max, summed in slot-seconds, and as a share of all worker-thread time"
    )
    print(f"  {'scenario':<39}{'items':>6}{'done':>6}{'left':>6}{'lost':>5}{'time s':>7}{'done/s':>7}"
          f"{'req/done':>9}{'retried':>8}{'requeued':>9}{'wait p50/p95/max s':>20}{'slot-s':>8}{'slot %':>7}")  # fmt: skip
    for m in results:
        print_workers(m)


def print_workers(m: Measured) -> None:
    v, elapsed = server_view(m.log), m.end - m.log[0][0]
    if m.scenario.limiter:
        done, dead = m.stats.get("synced", 0), m.stats.get("dead_lettered", 0)
        retried, requeued = str(m.stats.get("retried", 0)), str(m.gate.get("throttled", 0))
        w = sorted(m.waits)
        pct = f"{statistics.median(w):.2f}/{w[int(0.95 * (len(w) - 1))]:.2f}/{w[-1]:.2f}"
        slot, share = f"{sum(w):.0f}", f"{100 * sum(w) / (m.slots * elapsed):.0f}%"
    else:  # a failed baseline task (429) is lost; a rate-limited one waits in the consumer, not a slot
        done, dead, retried, requeued, pct, slot = v.ok, v.too_many, "-", "-", "(timer, no slot)", "0"
        share = "-"
    print(f"  {m.scenario.title:<39}{m.items:>6}{done:>6}{m.items - done - dead:>6}{dead:>5}{elapsed:>7.1f}{done / elapsed:>7.1f}"
          f"{v.ok / max(done, 1):>9.2f}{retried:>8}{requeued:>9}{pct:>20}{slot:>8}{share:>7}")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=20.0, help="the fake's requests/s per account (R)")
    parser.add_argument(
        "--burst", type=int, default=5, help="the fake's burst (and the limiter's by default)"
    )
    parser.add_argument("--limiter-burst", type=int, default=0, help="ktsync rate.burst (default: --burst)")
    parser.add_argument(
        "--max-in-flight", type=int, default=4, help="ktsync rate.max_in_flight (config default)"
    )
    parser.add_argument("--contacts", type=int, default=200, help="new contacts per ktsync scenario")
    parser.add_argument("--tasks", type=int, default=300, help="one-POST tasks per Celery scenario")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker process")
    parser.add_argument("--celery-pool", default="threads", help="pool of the Celery baseline workers")
    parser.add_argument("--deadline", type=float, default=35.0, help="seconds a scenario may run")
    parser.add_argument("--only", nargs="*", default=[], help="run only these scenario labels")
    return parser.parse_args()


@contextlib.contextmanager
def bench_setup(args: argparse.Namespace) -> Iterator[Bench]:
    with resolve_redis() as store, running_fake() as fake, bench_config(store, args.concurrency) as config:
        yield Bench(store, fake, config, args)


def main() -> None:
    args = parse_args()
    results: list[Measured] = []
    with bench_setup(args) as bench:
        for scenario in scenarios(args.budget):
            if not args.only or scenario.label in args.only:
                results.append((run_ktsync if scenario.limiter else run_celery)(bench, scenario))
                print(f"  ... {scenario.title}: done", file=sys.stderr, flush=True)
    print_report(results, args)


if __name__ == "__main__":
    main()
