"""The load of ``bench.tenants``: the tenants' contacts, the quiet tenants' live feed, the worker processes."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from bench.lanes import worker_argv
from bench.rate import stop
from bench.run import new_contact
from ktsync.config.settings import Settings
from ktsync.core.tenants import tenant_prefix
from ktsync.producers import Producer
from ktsync.worker.state import RedisStateStore

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "hubspot"


def contact(tenant: str, kind: str, i: int) -> dict[str, object]:
    return {**new_contact(i), "tenant": tenant, "crm_contact_id": f"{tenant}-{kind}-{i}",
            "email": f"{kind}-{i}@{tenant}.bench.example"}  # fmt: skip


class LiveFeed:
    """One live change per quiet tenant every ``every`` seconds, staggered; records when each was
    enqueued and when ktsync's state store had it (one pipelined EXISTS per poll)."""

    def __init__(self, settings: Settings, quiet: tuple[str, ...], every: float) -> None:
        self.settings, self.quiet, self.every = settings, quiet, every
        self.enqueued: dict[tuple[str, str], float] = {}  # (tenant, crm id) -> monotonic
        self.enqueued_at: dict[tuple[str, str], float] = {}  # (tenant, crm id) -> time.time()
        self.applied: dict[tuple[str, str], float] = {}
        self._stop_feed, self._stop_watch = threading.Event(), threading.Event()
        self._feeder = threading.Thread(target=self._feed)
        self._watcher = threading.Thread(target=self._watch)

    def __enter__(self) -> LiveFeed:
        self._feeder.start()
        self._watcher.start()
        return self

    def stop_feeding(self) -> None:
        self._stop_feed.set()
        self._feeder.join()

    def finish(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the changes still on their way, then stop watching."""
        deadline = time.monotonic() + grace
        while len(self.applied) < len(self.enqueued) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop_watch.set()
        self._watcher.join()

    def __exit__(self, *_: object) -> None:
        self._stop_feed.set()
        self._stop_watch.set()
        for thread in (self._feeder, self._watcher):
            if thread.is_alive():
                thread.join()

    def _feed(self) -> None:
        if not self.quiet:
            return
        step, started = self.every / len(self.quiet), time.monotonic()
        with Producer(self.settings) as producer:
            n = 0
            while not self._stop_feed.wait(max(0.0, started + n * step - time.monotonic())):
                tenant, i = self.quiet[n % len(self.quiet)], n // len(self.quiet)
                message = contact(tenant, "live", i)
                sent, sent_at = time.monotonic(), time.time()  # latency counts the enqueue itself
                producer.enqueue(message)
                key = (tenant, str(message["crm_contact_id"]))
                self.enqueued[key], self.enqueued_at[key] = sent, sent_at
                n += 1

    def _watch(self) -> None:
        client = redis.Redis.from_url(self.settings.redis_url)
        stores = {t: RedisStateStore(client, tenant_prefix(self.settings.key_prefix, t)) for t in self.quiet}
        while not self._stop_watch.wait(0.02):
            pending = [key for key in list(self.enqueued) if key not in self.applied]
            if not pending:
                continue
            pipe = client.pipeline(transaction=False)
            for tenant, crm_id in pending:
                pipe.exists(stores[tenant].key(SOURCE, crm_id))
            now = time.monotonic()
            for key, found in zip(pending, pipe.execute(), strict=True):
                if found:
                    self.applied[key] = now
        client.close()


@dataclass(frozen=True)
class Workers:
    """The running ``ktsync worker`` processes and their stderr files."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[IO[bytes]]

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def check(self) -> None:
        """RuntimeError with its last words when a worker has exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                words = log.read()[-3000:].decode(errors="replace")
                raise RuntimeError(f"a worker exited with status {proc.returncode}:\n{words}")


@contextlib.contextmanager
def workers(env: Mapping[str, str], args: argparse.Namespace) -> Iterator[Workers]:
    """``--workers`` ``ktsync worker`` processes, stopped afterwards."""
    argv = worker_argv(args.concurrency)
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(args.workers)]
        procs = [subprocess.Popen([*argv, "-n", f"tenants{n}@%h"], env=dict(env), cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=log) for n, log in enumerate(logs)]  # fmt: skip
        try:
            yield Workers(procs, logs)
        finally:
            stop(procs)
