"""Live changes under a bulk import, with lanes and on one FIFO queue, in one run.

    .venv/bin/python -m bench.lanes [--budget 20] [--burst 5] [--bulk 2000] [--window 60]
                                    [--live-every 1.0] [--workers 2] [--concurrency 8]

The fake KlickTipp enforces a budget of R requests/s per account (429 + Retry-After above it); ktsync
is configured with the same budget. A bulk import of ``--bulk`` new contacts is queued, the workers
start, and for ``--window`` seconds one live change (a new contact) arrives every ``--live-every``
seconds. Measured over the window:

* live latency (enqueue -> applied in ktsync's state store) p50 / p95 / max; a live change not
  applied by the end of the window counts as "not synced";
* bulk throughput as a share of what the budget left it: accepted bulk calls/s / (R - live calls/s),
  in the steady part of the window (the first 5 s, with the bucket's burst, left out).

Scenarios, each with a fresh fake, its own queues and key prefix:

1. ``lanes``  the import in the bulk lane (``ktsync import``'s default), live changes in the live lane
2. ``fifo``   everything on one queue (how ktsync worked before lanes): the same workload in FIFO order
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
import yaml
from celery import Celery

from bench.environment import bench_config, bench_env, consumed_lists
from bench.rate import stop
from bench.run import new_contact
from fake_klicktipp.testing import RunningFake, running_fake
from ktsync.config.celery import celery_config
from ktsync.config.settings import Settings, load_settings
from ktsync.core.broker import ENQUEUED_AT_HEADER
from ktsync.core.redis_server import RedisHandle, resolve_redis
from ktsync.producers import Producer
from ktsync.producers.enqueue import summary
from ktsync.worker.state import RedisStateStore

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 5.0  # seconds of the window left out of the throughput (the bucket's burst goes first)
RATE_ENV = ("KTSYNC_RATE_LIMIT", "KTSYNC_RATE_BURST", "KTSYNC_MAX_IN_FLIGHT")


@dataclass
class Measured:
    label: str
    title: str
    latencies: list[float] = field(default_factory=list)  # of the live changes applied in the window
    unsynced: int = 0  # live changes not applied by the end of the window
    live_calls: float = 0.0  # accepted live calls/s (steady part of the window)
    bulk_calls: float = 0.0  # accepted bulk calls/s (steady part)
    too_many: int = 0  # 429s the fake answered
    bulk_done: int = 0  # bulk contacts applied by the end of the window


def scenario_env(
    store: RedisHandle, fake: RunningFake, config: Path, label: str, args: argparse.Namespace
) -> dict[str, str]:
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    name = f"ktsync-lanes-{label}"
    document["redis"]["key_prefix"] = name
    document["worker"]["queue"] = name
    document["rate"].update(per_second=args.budget, burst=args.burst, max_in_flight=args.max_in_flight)
    path = config.parent / f"{label}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=path)
    for variable in RATE_ENV:
        env.pop(variable, None)
    return env


def contact(kind: str, i: int) -> dict[str, object]:
    return {**new_contact(i), "crm_contact_id": f"{kind}-{i}", "email": f"{kind}-{i}@{kind}.bench.example"}


def enqueue_fifo(settings: Settings, messages: list[dict[str, object]]) -> None:
    """Publish to the single queue of ktsync before lanes (its workers still read it, as one FIFO)."""
    app = Celery("bench-fifo", set_as_current=False)
    app.conf.update(celery_config(settings))
    with app.producer_or_acquire() as producer:
        for message in messages:
            app.send_task("ktsync.sync_contact", args=[message], queue=settings.worker.queue, producer=producer,
                          headers={ENQUEUED_AT_HEADER: time.time()}, argsrepr=summary(message))  # fmt: skip
    app.close()


class LiveFeed:
    """One live change every ``every`` seconds; records when each was enqueued and when it was applied."""

    def __init__(self, settings: Settings, *, fifo: bool, every: float) -> None:
        self.settings, self.fifo, self.every = settings, fifo, every
        self.enqueued: dict[str, float] = {}
        self.applied: dict[str, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._feed), threading.Thread(target=self._watch)]

    def __enter__(self) -> LiveFeed:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _feed(self) -> None:
        with Producer(self.settings) as producer:
            i = 0
            while not self._stop.is_set():
                message = contact("live", i)
                if self.fifo:
                    enqueue_fifo(self.settings, [message])
                else:
                    producer.enqueue(message)
                self.enqueued[str(message["crm_contact_id"])] = time.monotonic()
                i += 1
                self._stop.wait(self.every)

    def _watch(self) -> None:
        client = redis.Redis.from_url(self.settings.redis_url)
        state = RedisStateStore(client, self.settings.key_prefix)
        while not self._stop.wait(0.02):
            for crm_id in [c for c in list(self.enqueued) if c not in self.applied]:
                if state.get("hubspot", crm_id) is not None:
                    self.applied[crm_id] = time.monotonic()
        client.close()


def worker_argv(concurrency: int) -> list[str]:
    """A quiet ``ktsync worker`` with the threads pool (the benchmarks' worker processes)."""
    return [
        sys.executable,
        "-m",
        "ktsync",
        "worker",
        "-P",
        "threads",
        f"-c{concurrency}",
        "-l",
        "WARNING",
        "-q",
    ]


@contextlib.contextmanager
def workers(env: Mapping[str, str], args: argparse.Namespace) -> Iterator[None]:
    argv = worker_argv(args.concurrency)
    procs = [subprocess.Popen([*argv, "-n", f"lanes{n}@%h"], env=dict(env), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in range(args.workers)]  # fmt: skip
    try:
        yield
    finally:
        stop(procs)


def run(
    store: RedisHandle, fake: RunningFake, config: Path, args: argparse.Namespace, *, fifo: bool
) -> Measured:
    label = "fifo" if fifo else "lanes"
    env = scenario_env(store, fake, config, label, args)
    settings = load_settings(env)
    fake.control.reset()
    fake.control.faults(rate_limit={"per_second": args.budget, "burst": args.burst})
    bulk = [contact("bulk", i) for i in range(args.bulk)]
    if fifo:
        enqueue_fifo(settings, bulk)
    else:
        with Producer(settings, lane="bulk") as producer:
            producer.enqueue_many(bulk)
    with workers(env, args):
        time.sleep(3.0)  # worker start-up (its start-up check, the consumer connecting)
        started = time.time()
        with LiveFeed(settings, fifo=fifo, every=args.live_every) as feed:
            time.sleep(args.window)
        ended = time.time()
        client = redis.Redis.from_url(settings.redis_url)
        state = RedisStateStore(client, settings.key_prefix)
        done = sum(1 for i in range(args.bulk) if state.get("hubspot", f"bulk-{i}") is not None)
        client.delete(*consumed_lists(settings))
        client.close()
    measured = Measured(
        label, "lanes (bulk import, live changes)" if not fifo else "one FIFO queue (before lanes)"
    )
    measured.latencies = sorted(feed.applied[c] - feed.enqueued[c] for c in feed.applied)
    measured.unsynced = len(feed.enqueued) - len(feed.applied)
    measured.bulk_done = done
    log = fake.control.requests()
    steady = [r for r in log if started + WARM_UP <= float(r["ts"]) <= ended]
    seconds = max(ended - started - WARM_UP, 1e-9)
    accepted = [r for r in steady if r["status"] != 429]
    measured.live_calls = sum(1 for r in accepted if "@live." in str(r.get("body"))) / seconds
    measured.bulk_calls = sum(1 for r in accepted if "@bulk." in str(r.get("body"))) / seconds
    measured.too_many = sum(1 for r in log if r["status"] == 429)
    return measured


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def report(results: list[Measured], args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cores; fake KlickTipp: R = {args.budget:g} req/s, burst {args.burst}; ktsync "
          f"rate.per_second = R; {args.workers} x `ktsync worker -P threads -c{args.concurrency}`; bulk import of "
          f"{args.bulk} new contacts, one live change (a new contact) every {args.live_every:g} s for "
          f"{args.window:g} s")  # fmt: skip
    print(f"  {'scenario':<36}{'live p50':>9}{'p95':>7}{'max':>7}{'not synced':>11}{'live calls/s':>13}"
          f"{'bulk calls/s':>13}{'bulk/(R-live)':>14}{'bulk done':>10}{'429s':>6}")  # fmt: skip
    for m in results:
        lat = m.latencies
        p50, p95, top = (
            (f"{v:.2f}s" for v in (statistics.median(lat), percentile(lat, 0.95), lat[-1]))
            if lat
            else ("-",) * 3
        )
        left = args.budget - m.live_calls
        print(f"  {m.title:<36}{p50:>9}{p95:>7}{top:>7}"
              f"{m.unsynced:>11}{m.live_calls:>13.2f}{m.bulk_calls:>13.2f}{m.bulk_calls / left:>14.2f}"
              f"{m.bulk_done:>10}{m.too_many:>6}")  # fmt: skip
    lanes = next(m for m in results if m.label == "lanes")
    print(f"\ngoal: live p95 <= 2 s plus its own calls; bulk >= 0.9 x (R - live demand). lanes: p95 "
          f"{percentile(lanes.latencies, 0.95) if lanes.latencies else float('nan'):.2f} s, bulk "
          f"{lanes.bulk_calls / (args.budget - lanes.live_calls):.2f} x")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=20.0, help="the fake's and ktsync's requests/s (R)")
    parser.add_argument("--burst", type=int, default=5, help="the fake's and ktsync's burst")
    parser.add_argument(
        "--max-in-flight", type=int, default=4, help="ktsync rate.max_in_flight (the default)"
    )
    parser.add_argument("--bulk", type=int, default=2000, help="new contacts in the bulk import")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of live changes per scenario")
    parser.add_argument("--live-every", type=float, default=1.0, help="seconds between live changes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker process")
    parser.add_argument("--only", choices=["lanes", "fifo"], help="run one scenario")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    results = []
    with resolve_redis() as store, running_fake() as fake, bench_config(store, args.concurrency) as config:
        for fifo in (False, True):
            if args.only in (None, "fifo" if fifo else "lanes"):
                results.append(run(store, fake, config, args, fifo=fifo))
                print(f"  ... {results[-1].title}: done", file=sys.stderr, flush=True)
    report(results, args)


if __name__ == "__main__":
    main()
