"""`ktsync demo`: Redis, the fake KlickTipp and a real worker, sample contacts synced end to end.

Everything runs on embedded defaults: a private Redis (unless KTSYNC_REDIS_URL is set, in which
case the demo keeps to its own queue and key prefix there), the fake KlickTipp on a free port,
and one worker process. Whatever the demo starts, it stops.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from fake_klicktipp.testing import running_fake
from ktsync.config.settings import Settings, load_settings
from ktsync.core.redis_server import resolve_redis
from ktsync.local import fake_env, local_config
from ktsync.producers import Producer
from ktsync.producers.imports import ImportReport, jsonl_messages, run_import
from ktsync.queues import overall_status

DEFAULT_CONTACTS = Path(__file__).resolve().parents[1] / "examples" / "contacts.jsonl"
DEMO_NAMESPACE = "ktsync-demo"
DRAIN_TIMEOUT_S = 120.0
DEMO_RATE = 100  # requests/s: the fake's budget; for a real account ktsync defaults to a careful 5/s
SAMPLE_SIZE = 8


def run_demo(path: Path | None = None, *, concurrency: int = 8) -> int:
    """Run the demo; return the process exit status (0 when every valid contact was handled)."""
    contacts = path or DEFAULT_CONTACTS
    rate = {"per_second": DEMO_RATE, "burst": DEMO_RATE}
    with (
        resolve_redis() as store,
        running_fake() as fake,
        local_config(DEMO_NAMESPACE, rate=rate) as config_path,
    ):
        origin = "given by KTSYNC_REDIS_URL" if not store.owned else "private, started for the demo"
        _say(f"Redis {store.url} ({origin}); fake KlickTipp {fake.base_url}; budget {DEMO_RATE} requests/s")
        env = fake_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=config_path)
        settings = load_settings(env)
        client = redis.Redis.from_url(settings.redis_url)
        _clear_demo_keys(client, settings)
        with _worker(env, concurrency) as worker:
            with Producer(settings) as producer, contacts.open(encoding="utf-8") as lines:
                report = run_import(jsonl_messages(lines, None), producer, keep=None)
            _say(f"enqueued {report.enqueued} contacts from {contacts.name}; rejected {report.rejected}")
            drained = _wait_for_drain(client, settings, report.enqueued, worker)
        _summarize(client, settings, report, fake.control.state(), fake.control.requests())
        _clear_demo_keys(client, settings)
        client.close()
    return 0 if drained else 1


@contextmanager
def _worker(env: Mapping[str, str], concurrency: int) -> Iterator[subprocess.Popen[bytes]]:
    argv = [
        sys.executable,
        "-m",
        "ktsync",
        "worker",
        f"--concurrency={concurrency}",
        "--loglevel=WARNING",
        "--quiet",
    ]
    proc = subprocess.Popen(argv, env=dict(env))  # noqa: S603 - our own interpreter and module
    try:
        yield proc
    finally:
        proc.terminate()  # warm shutdown: finish the running tasks, then exit
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_drain(
    client: redis.Redis, settings: Settings, expected: int, worker: subprocess.Popen[bytes]
) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            _say(f"the worker exited with status {worker.returncode} (see its messages above)")
            return False
        handled = _handled(client, settings)
        if handled >= expected and overall_status(client, settings, time.time()).drained:
            return True
        time.sleep(0.1)
    _say(f"gave up waiting after {DRAIN_TIMEOUT_S:.0f}s")
    return False


def _handled(client: redis.Redis, settings: Settings) -> int:
    from ktsync.worker.stats import RedisStats

    counts = RedisStats(client, settings.key_prefix).snapshot()
    return sum(v for k, v in counts.items() if k != "retried")


def _summarize(
    client: redis.Redis,
    settings: Settings,
    report: ImportReport,
    state: Mapping[str, Any],
    requests: Sequence[Mapping[str, Any]],
) -> None:
    from ktsync.worker.deadletter import RedisDeadLetterStore
    from ktsync.worker.stats import RedisStats

    counts = RedisStats(client, settings.key_prefix).snapshot()
    _say("")
    _say(f"== Outcome: synced {counts.get('synced', 0)}, "
         f"kept unsubscribed {counts.get('unsubscribed', 0)} (KlickTipp decides subscription status), "
         f"dead-lettered {counts.get('dead_lettered', 0)}, rejected at the producer {report.rejected}")  # fmt: skip
    for line, reason in report.first_rejections:
        _say(f"  rejected line {line}: {reason}")
    for letter in RedisDeadLetterStore(client, settings.key_prefix).list():
        who = letter.message.get("crm_contact_id", "?")
        _say(f"  dead letter {letter.reason} (contact {who}): {letter.error.get('message', '')}")
    calls = collections.Counter(f"{r['method']} {r['path']}" for r in requests)
    _say(
        f"== KlickTipp calls ({sum(calls.values())}): "
        + ", ".join(f"{k} x{v}" for k, v in calls.most_common())
    )
    _print_contacts(state)


def _print_contacts(state: Mapping[str, Any]) -> None:
    tags = {str(t["id"]): t["name"] for t in state.get("tags", [])}
    contacts = [c for c in state.get("contacts", []) if c.get("email", "").endswith(".example")]
    _say(f"== Sample of the fake KlickTipp's {len(contacts)} contacts:")
    for contact in contacts[:SAMPLE_SIZE]:
        tag_ids = [*contact.get("manual_tags", {}), *contact.get("smart_tags", {})]
        names = sorted(tags.get(str(t), str(t)) for t in tag_ids)
        _say(
            f"  {contact['id']:>4} {contact['email']:<34} {contact.get('status', ''):<15} {', '.join(names)}"
        )


def _clear_demo_keys(client: redis.Redis, settings: Settings) -> None:
    """Delete only what the demo wrote (its prefix and its queue), also in a Redis we did not start."""
    keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=500))
    keys.extend(settings.broker_prefix + queue for queue in settings.worker.consumed_queues)
    client.delete(*keys)


def _say(text: str) -> None:
    print(text, flush=True)
