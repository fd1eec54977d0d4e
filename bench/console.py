"""What the console's pages cost as the dead-letter queue grows, against `ktsync dlq stats`'s own work.

    .venv/bin/python -m bench.console [--letters 1000,10000] [--rounds 5]

Seeds N dead letters (and an hour of chart history) under the bench's own key prefix, serves the
console in this process under uvicorn on loopback, and times, median of ``--rounds``:

* baseline: what ``ktsync dlq stats`` does to group the letters (read every letter, group them),
  called directly, no HTTP;
* ``GET /dead-letters`` (groups + the first 200 entries), ``GET /`` (the overview) and
  ``GET /dead-letters/{id}``, over HTTP with a signed-in session.

Prints milliseconds and each page's ratio to the baseline of the same size, in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import requests

from bench.environment import bench_config
from ktsync.config.settings import load_settings
from ktsync.console.app import build_app
from ktsync.console.audit import RedisAuditLog
from ktsync.console.auth import users_from_env
from ktsync.console.context import Console
from ktsync.core import series
from ktsync.core.redis_server import resolve_redis
from ktsync.core.web import in_thread, uvicorn_config
from ktsync.worker.deadletter import DeadLetter, RedisDeadLetterStore
from ktsync.worker.deadletter.triage import group

USER = ("bench", "bench-password")
REASONS = (("retries_exhausted", None), ("validation", 8), ("conflict", 507), ("mapping", None))


def seed(store: RedisDeadLetterStore, n: int, now: float) -> None:
    for i in range(n):
        reason, code = REASONS[i % len(REASONS)]
        message = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": str(i),
                   "email": f"p{i}@shop.example", "occurred_at": now - 600}  # fmt: skip
        error = {"message": "bench", **({"error": code} if code else {})}
        store.add(DeadLetter(f"bench-{i}", message, "ktsync.sync_contact", reason, error, 3,
                             now - 300, now - 60 + i / n, source="hubspot"))  # fmt: skip


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--letters", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(n) for n in args.letters.split(",")]
    env = {"KTSYNC_CONSOLE_AUTH": ":".join(USER), "KLICKTIPP_USERNAME": "bench@example"}
    with resolve_redis() as handle, bench_config(handle, 1, namespace="ktsync-bench-console") as config:
        settings = load_settings({**os.environ, "KTSYNC_REDIS_URL": handle.url, "KTSYNC_CONFIG": str(config)})
        import redis

        client = redis.Redis.from_url(handle.url)
        console = Console(
            settings, client, env, users_from_env(env), RedisAuditLog(client, settings.deployment_prefix)
        )
        store = RedisDeadLetterStore(client, settings.key_prefix)
        now = time.time()
        pipe = client.pipeline(transaction=False)
        for minute in range(60):
            series.stage(
                pipe, settings.key_prefix, "live", now - minute * 60, calls=100, done=40, latency=0.5
            )
        pipe.execute()
        app_config = uvicorn_config(
            build_app(console), host="127.0.0.1", port=0, log_level="warning", log_config=None
        )
        print(f"{'letters':>8} {'baseline ms':>12} {'/dead-letters ms':>17} {'ratio':>6} {'/ ms':>7} "
              f"{'ratio':>6} {'/dead-letters/ID ms':>20}")  # fmt: skip
        with in_thread(app_config, "console-bench") as base, requests.Session() as http:
            http.get(base + "/login", timeout=30)
            token = (
                http.get(base + "/login", timeout=30).text.split('name="csrf" value="', 1)[1].split('"')[0]
            )
            http.post(
                base + "/login", data={"csrf": token, "username": USER[0], "password": USER[1]}, timeout=30
            )
            seeded = 0
            for n in sizes:
                seed_more = n - seeded
                if seed_more > 0:
                    seed(store, n, now)
                    seeded = n
                baseline = median_ms(lambda: group(store.list(limit=10**9)), args.rounds)
                letters = median_ms(
                    lambda: http.get(base + "/dead-letters", timeout=120).raise_for_status(), args.rounds
                )
                overview = median_ms(
                    lambda: http.get(base + "/", timeout=120).raise_for_status(), args.rounds
                )
                one = median_ms(
                    lambda: http.get(base + "/dead-letters/bench-1", timeout=120).raise_for_status(),
                    args.rounds,
                )
                print(f"{n:>8} {baseline:>12.1f} {letters:>17.1f} {letters / baseline:>6.2f} {overview:>7.1f} "
                      f"{overview / baseline:>6.2f} {one:>20.1f}")  # fmt: skip
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


if __name__ == "__main__":
    main()
