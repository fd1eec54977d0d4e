"""ktsync's throughput beside its baselines, all measured in one run on this machine.

    make bench            # or: .venv/bin/python -m bench.run [--tasks N] [--concurrency C]

Prints: raw requests.Session calls/s against the fake KlickTipp; raw Celery no-op tasks/s; raw Celery
tasks/s with one HTTP call each; ktsync contacts/s end to end (new contacts, no rate limit: the
limiter off), and again with the global limiter on but a budget never reached (its own cost); the
ratios between them, and ktsync's KlickTipp calls per contact.

The ideal for a new contact follows from the same run's baselines: one task dispatch plus two HTTP
calls, each HTTP call costing what the one-HTTP task costs beyond a no-op, i.e.
``1 / (2 / one_http - 1 / noop)`` contacts/s (:func:`ideal_rate`); each ktsync rate is also shown as
its share of that ideal: the rest is ktsync's own cost per contact (its Redis round trips, its
Python), see ``python -m bench.roundtrips``. ``--repeat N`` runs everything N times, in turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from celery import Celery

from bench.environment import bench_config, bench_env
from fake_klicktipp.testing import SINGLE_OPT_IN_LIST_ID, RunningFake, partner_headers, running_fake
from ktsync.config.celery import celery_config
from ktsync.config.settings import Settings, load_settings
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import resolve_redis
from ktsync.producers import Producer
from ktsync.queues import queue_status

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Result:
    name: str
    rate: float
    unit: str


def raw_http(base_url: str, n: int) -> Result:
    """One keep-alive requests.Session, one add-or-update call after another."""
    session = requests.Session()
    session.headers.update(partner_headers())
    started = time.perf_counter()
    for i in range(n):
        body = {"email": f"raw-{i}@bench.example", "listid": SINGLE_OPT_IN_LIST_ID}
        session.post(f"{base_url}/subscriber", json=body, timeout=10).raise_for_status()
    return Result("raw requests.Session calls", n / (time.perf_counter() - started), "calls/s")


def drain_rate(
    client: redis.Redis, settings: Settings, n: int, start: Callable[[], subprocess.Popen[bytes]], queue: str
) -> float:
    """Messages/s from the first message taken to the queue drained (worker start-up excluded)."""
    prefix = settings.broker_prefix
    proc = start()
    try:
        first = None
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")
            status = queue_status(client, queue, time.time(), prefix)
            now = time.perf_counter()
            if first is None and status.pending < n:
                first = now
            if first is not None and status.drained:
                return n / (now - first)
            time.sleep(0.002)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def worker_process(argv: list[str], env: Mapping[str, str]) -> Callable[[], subprocess.Popen[bytes]]:
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *argv],
            env=dict(env),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    return start


def celery_baseline(task: str, settings: Settings, env: Mapping[str, str], n: int, concurrency: int) -> float:
    app = Celery("bench-producer", set_as_current=False)
    app.conf.update(celery_config(settings))
    with app.producer_or_acquire() as producer:
        for i in range(n):
            app.send_task(task, args=[i], queue=settings.worker.queue, producer=producer)
    argv = ["-m", "celery", "-A", "bench.baseline_app", "--quiet", "worker", "-P", "threads", f"-c{concurrency}",
            f"-Q{settings.worker.queue}", "--without-mingle", "-E", "-l", "WARNING"]  # fmt: skip
    client = redis.Redis.from_url(settings.redis_url)
    return drain_rate(client, settings, n, worker_process(argv, env), settings.worker.queue)


def ktsync_end_to_end(
    settings: Settings, env: Mapping[str, str], n: int, concurrency: int, *, first: int = 0
) -> float:
    with Producer(settings) as producer:
        producer.enqueue_many(new_contact(i) for i in range(first, first + n))
    argv = ["-m", "ktsync", "worker", "-P", "threads", f"-c{concurrency}", "-l", "WARNING", "--quiet"]
    client = redis.Redis.from_url(settings.redis_url)
    return drain_rate(client, settings, n, worker_process(argv, env), settings.worker.lane_queue(Lane.LIVE))


def new_contact(i: int) -> dict[str, object]:
    """A typical new CRM contact: a few mapped fields, a lifecycle stage and one list (two tags)."""
    return {
        "v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": str(100000 + i),
        "email": f"contact-{i}@bench.example", "occurred_at": 1795341600 + i,
        "properties": {"firstname": "Bench", "lastname": f"Contact {i}", "city": "Berlin",
                       "lifecyclestage": ("lead", "customer")[i % 2], "lists": ["Newsletter"]},
    }  # fmt: skip


@contextmanager
def environment(concurrency: int) -> Iterator[tuple[Settings, dict[str, str], RunningFake]]:
    with resolve_redis() as store, running_fake() as fake, bench_config(store, concurrency) as config:
        env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=config)
        yield load_settings(env), env, fake


def forget_reference_data(settings: Settings) -> None:
    """Drop ktsync's shared cache of the account's fields, lists and tags (see worker/refcache)."""
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(*(f"{settings.key_prefix}:ref:{kind}" for kind in ("fields", "lists", "tags")))
    client.close()


def ideal_rate(noop: float, one_http: float, calls: int = 2) -> float:
    """Contacts/s of a worker whose only cost per contact is one task dispatch and ``calls`` HTTP
    calls: a call costs ``1 / one_http - 1 / noop`` seconds, a dispatch ``1 / noop``. Pure."""
    seconds = calls / one_http - (calls - 1) / noop
    return 1 / seconds if seconds > 0 else float("inf")


def share(rate: float, ideal: float) -> float:
    """``rate`` as a share of ``ideal`` (0..1, or above 1 if the ideal was beaten). Pure."""
    return rate / ideal if ideal > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=3000, help="tasks per Celery measurement")
    parser.add_argument("--calls", type=int, default=3000, help="raw HTTP calls")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker (ktsync's default: 8)")
    parser.add_argument("--repeat", type=int, default=1, help="run every measurement this many times")
    args = parser.parse_args()
    shares: list[tuple[float, float]] = []
    with environment(args.concurrency) as (settings, env, fake):
        for round_ in range(args.repeat):
            http = raw_http(fake.base_url, args.calls)
            noop = celery_baseline("bench.noop", settings, env, args.tasks, args.concurrency)
            one_http = celery_baseline("bench.one_http", settings, env, args.tasks, args.concurrency)
            fake.control.reset()
            fake.control.clear_requests()
            forget_reference_data(settings)  # the tags created in an earlier round are gone with the reset
            first = 2 * round_ * args.tasks  # new contacts in every round
            # "No rate limit": the limiter switched off (rate.per_second 0) ...
            unlimited = {**env, "KTSYNC_RATE_LIMIT": "0"}
            e2e = ktsync_end_to_end(settings, unlimited, args.tasks, args.concurrency, first=first)
            calls = sum(1 for r in fake.control.requests() if r["path"].startswith("/subscriber"))
            # ... and the limiter on, with a budget never reached: its cost per KlickTipp call, shown apart.
            limited = ktsync_end_to_end(settings, env, args.tasks, args.concurrency, first=first + args.tasks)
            report(http.rate, noop, one_http, (e2e, limited), calls / args.tasks, args)
            ideal = ideal_rate(noop, one_http)
            shares.append((share(e2e, ideal), share(limited, ideal)))
    if args.repeat > 1:
        report_shares(shares)


def report(
    http: float,
    noop: float,
    one_http: float,
    ktsync: tuple[float, float],
    per_contact: float,
    args: argparse.Namespace,
) -> None:
    e2e, limited = ktsync
    ideal = ideal_rate(noop, one_http)
    print(
        f"machine: {os.cpu_count()} cores; threads pool, concurrency {args.concurrency}; {args.tasks} tasks each"
    )
    rows = [
        ("raw requests.Session calls/s (fake KlickTipp)", http, ""),
        ("raw Celery no-op tasks/s", noop, ""),
        ("raw Celery tasks/s, one HTTP call each", one_http, f"{one_http / noop:.2f}x no-op"),
        ("ideal contacts/s: one dispatch + two HTTP calls", ideal, f"{ideal / one_http:.2f}x one-HTTP baseline"),
        ("ktsync contacts/s end to end (new contacts)", e2e,
         f"{e2e / one_http:.2f}x one-HTTP baseline, {share(e2e, ideal):.0%} of the ideal"),
        ("  the same with the global limiter on", limited,
         f"{limited / one_http:.2f}x one-HTTP baseline, {share(limited, ideal):.0%} of the ideal"),
    ]  # fmt: skip
    for name, rate, ratio in rows:
        print(f"  {name:<48} {rate:>8.0f}   {ratio}")
    print(f"  ktsync KlickTipp contact calls per new contact: {per_contact:.2f} (goal: at most 2)")
    print(f"  goal: ktsync >= 0.5x the one-HTTP baseline -> {'met' if e2e >= 0.5 * one_http else 'NOT met'}")
    met = "met" if share(limited, ideal) >= IDEAL_GOAL else "NOT met"
    print(f"  goal: with the limiter on >= {IDEAL_GOAL:.0%} of the ideal -> {met}")


IDEAL_GOAL = 0.9  # the share of the ideal ktsync should reach with the limiter on (issue 11)


def report_shares(shares: list[tuple[float, float]]) -> None:
    """Each round's share of the ideal, and their median (the rounds ran in turn, in one environment)."""
    off, on = (sorted(column) for column in zip(*shares, strict=True))
    print(f"share of the ideal over {len(shares)} rounds (limiter off; on):")
    print(f"  limiter off: {', '.join(f'{s:.0%}' for s in off)}   median {statistics.median(off):.0%}")
    print(f"  limiter on:  {', '.join(f'{s:.0%}' for s in on)}   median {statistics.median(on):.0%}")


if __name__ == "__main__":
    main()
