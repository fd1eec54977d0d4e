"""Crash recovery: ``kill -9`` one of two workers mid-batch at default settings; how soon is its work back?

    .venv/bin/python -m bench.crash [--contacts 600] [--latency-ms 100] [--kill-at 0.3] [--concurrency 8]

Two ``ktsync worker`` processes (the default pool and concurrency) consume one batch of new contacts
from a private Redis (or ``KTSYNC_REDIS_URL``, under keys of the bench's own) against the fake
KlickTipp, slowed down by ``--latency-ms`` per call. When ``--kill-at`` of the batch is synced, worker
A is killed with SIGKILL (its whole process group); worker B keeps running. The visibility timeout
(3600 s), the lock lease (120 s) and the heartbeat (2 s, timeout 10 s) are the defaults.

Reported: the tasks A held (delivered, not acknowledged: kombu's unacked hash), the time from the kill
until B's reclaimer found A dead (its locks and limiter slots released), and until every task A held
had run again (an outcome in its contact's timeline); then, once the batch is done, the contacts lost (not in KlickTipp) or duplicated
(more than once) — and, for comparison, what kombu alone would give.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from bench.environment import bench_config, bench_env, consumed_lists
from bench.run import new_contact
from fake_klicktipp.testing import RunningFake, running_fake
from ktsync.config.settings import Settings, load_settings
from ktsync.core.broker import UNACKED_KEY
from ktsync.core.redis_server import RedisHandle, resolve_redis
from ktsync.producers import Producer
from ktsync.worker.recovery import Keys, live_sessions, read_recovery
from ktsync.worker.stats import RedisStats
from ktsync.worker.telemetry import read_timeline

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "ktsync-bench-crash"
SOURCE = "hubspot"
DEADLINE = 180.0  # seconds the bench waits for anything before it gives up


@dataclass(frozen=True)
class Killed:
    at: float  # time.time() of the SIGKILL
    held: dict[str, str]  # delivery tag -> crm_contact_id of the tasks A held


@dataclass(frozen=True)
class Measured:
    held: int
    reclaimed_after: float | None  # seconds from the kill to B's reclaim of A
    rerun_after: float | None  # seconds from the kill to the last of A's tasks run again
    lost: int
    duplicated: int
    recovery: dict[str, int]
    drained_after: float


def start_worker(name: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "ktsync",
        "worker",
        "--quiet",
        "--loglevel=WARNING",
        f"--hostname={name}@%h",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def kill(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop(process: subprocess.Popen[bytes]) -> None:
    kill(process, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill(process)
        process.wait()


def wait_until(what: str, predicate: Any, timeout: float = DEADLINE, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.crash: gave up waiting for {what} after {timeout:g}s")
        time.sleep(interval)
    return value


def unacked_contacts(client: redis.Redis, settings: Settings) -> dict[str, str]:
    """Delivery tag -> crm_contact_id of every unacknowledged ktsync task."""
    found = {}
    queues = set(settings.worker.consumed_queues)
    for tag, raw in cast(dict[bytes, bytes], client.hgetall(settings.broker_prefix + UNACKED_KEY)).items():
        payload, _exchange, queue = json.loads(raw)
        if queue in queues:
            args = json.loads(base64.b64decode(payload["body"]))[0]
            found[tag.decode()] = str(args[0].get("crm_contact_id", ""))
    return found


def session_of(client: redis.Redis, settings: Settings, pid: int) -> dict[str, Any]:
    return next(s for s in live_sessions(client, settings.key_prefix) if s.get("pid") == pid)


def kill_a(client: redis.Redis, settings: Settings, a: subprocess.Popen[bytes], b_pid: int) -> Killed:
    """SIGKILL worker A; the tasks it held: unacked at the kill and still unacked after B's next beat,
    minus what B holds then (A's cannot be acked or given back within a heartbeat timeout)."""
    kill(a)
    killed_at = time.time()
    a.wait()
    at_kill = unacked_contacts(client, settings)
    wait_until("B's next heartbeat", lambda: session_of(client, settings, b_pid)["beat"] > killed_at + 0.1)
    b_session = session_of(client, settings, b_pid)["id"]
    b_held = {t.decode() for t in cast(set[bytes], client.smembers(Keys.of(settings).held(b_session)))}
    still = unacked_contacts(client, settings)
    return Killed(killed_at, {tag: c for tag, c in at_kill.items() if tag in still and tag not in b_held})


def ran_again_at(client: redis.Redis, settings: Settings, contact: str, since: float) -> float | None:
    """When a task for the contact first ended after ``since`` (its timeline's outcome), if it did."""
    ends = [e["at"] for e in read_timeline(client, settings.key_prefix, SOURCE, contact)
            if e["kind"] == "outcome" and e["at"] > since]  # fmt: skip
    return min(ends) if ends else None


def backlog(client: redis.Redis, settings: Settings) -> int:
    return sum(int(client.llen(name)) for name in consumed_lists(settings)) + int(
        client.hlen(settings.broker_prefix + UNACKED_KEY)
    )


def run(store: RedisHandle, fake: RunningFake, args: argparse.Namespace, workdir: Path) -> Measured:
    with crash_config(store, args) as config:
        env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=config)
        settings = load_settings(env)
        client = redis.Redis.from_url(settings.redis_url)
        fake.control.reset()
        fake.control.faults(latency_ms=args.latency_ms)
        messages = [new_contact(i) for i in range(args.contacts)]
        stats = RedisStats(client, settings.key_prefix)
        with ExitStack() as stack:
            a, b = (start_worker(name, env, workdir / f"{name}.log") for name in ("a", "b"))
            for process in (a, b):
                stack.callback(stop, process)
            wait_until("both workers", lambda: len(live_sessions(client, settings.key_prefix)) == 2, 60)
            with Producer(settings) as producer:
                producer.enqueue_many(messages)
            wait_until(
                "the kill point", lambda: stats.snapshot().get("synced", 0) >= args.kill_at * args.contacts
            )
            killed = kill_a(client, settings, a, b.pid)
            return measure(client, settings, fake, killed, messages)


def measure(
    client: redis.Redis, settings: Settings, fake: RunningFake, killed: Killed, messages: list[dict[str, Any]]
) -> Measured:
    def reclaimed() -> float | None:
        return time.time() - killed.at if read_recovery(client, settings.key_prefix)["dead_workers"] else None

    def last_rerun() -> float | None:
        """When the last of A's tasks ran again; None while one has not."""
        times = [ran_again_at(client, settings, c, killed.at) for c in killed.held.values()]
        return None if None in times else max(cast(list[float], times), default=killed.at)

    reclaimed_after = wait_until("the reclaim of A", reclaimed)
    rerun_at = wait_until("every task of A to run again", last_rerun)
    wait_until("the batch", lambda: backlog(client, settings) == 0)
    drained_after = time.time() - killed.at
    per_email = Counter(c["email"] for c in fake.control.state()["contacts"])
    emails = [str(m["email"]) for m in messages]
    return Measured(
        held=len(killed.held),
        reclaimed_after=reclaimed_after,
        rerun_after=rerun_at - killed.at,
        lost=sum(1 for e in emails if per_email[e] == 0),
        duplicated=sum(1 for e in emails if per_email[e] > 1),
        recovery=read_recovery(client, settings.key_prefix),
        drained_after=drained_after,
    )


@contextmanager
def crash_config(store: RedisHandle, args: argparse.Namespace) -> Iterator[Path]:
    """The default config on the bench's own keys and queue; no rate limit (the fake's latency paces
    the batch). Keys of an earlier run are cleared first, and only ours, also on a shared Redis."""
    clear(store.url)
    try:
        with bench_config(store, args.concurrency, namespace=NAMESPACE) as path:
            yield path
    finally:
        clear(store.url)


def clear(url: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{NAMESPACE}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def print_report(m: Measured, args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} cores; 2 workers x ktsync worker (default pool threads, concurrency "
          f"{args.concurrency}); {args.contacts} new contacts; fake KlickTipp latency {args.latency_ms} ms per call; "
          f"worker A killed with SIGKILL at {args.kill_at:.0%} synced, worker B running")  # fmt: skip
    print("settings: worker.visibility_timeout 3600 s, sync.lock_lease 120 s, worker.heartbeat_interval 2 s, "
          "worker.heartbeat_timeout 10 s (the defaults)\n")  # fmt: skip
    print(f"  {'':<58}{'ktsync recovery':>16}{'kombu alone':>14}")
    rows = [
        ("tasks held by the killed worker", f"{m.held}", f"{m.held}"),
        (
            "kill -> found dead: its locks and limiter slots released",
            seconds(m.reclaimed_after),
            "120 s / 60 s",
        ),
        ("kill -> every task it held has run again", seconds(m.rerun_after), "3600-3610 s"),
        ("contacts lost (not in KlickTipp)", f"{m.lost}", "0 (late)"),
        ("contacts duplicated (twice in KlickTipp)", f"{m.duplicated}", "0"),
    ]
    for label, ours, theirs in rows:
        print(f"  {label:<58}{ours:>16}{theirs:>14}")
    print(f"\n  batch drained {m.drained_after:.1f} s after the kill; recovery counters: {m.recovery}")
    print("  (orphaned_tasks: tasks delivered to the killed worker after its last heartbeat, given back once")
    print("  held by nobody for heartbeat_timeout; the rest went back with the dead worker's session)")
    print("  kombu alone: its unacked sweep restores a task only past visibility_timeout (checked every "
          "restore_interval, 10 s), and a dead holder's lock stays for its lease")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=600, help="new contacts in the batch")
    parser.add_argument("--latency-ms", type=int, default=100, help="the fake's latency per call")
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of the batch synced at the kill")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker (the default)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with (
        resolve_redis() as store,
        running_fake() as fake,
        tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp,
    ):
        measured = run(store, fake, args, Path(tmp))
    print_report(measured, args)


if __name__ == "__main__":
    main()
