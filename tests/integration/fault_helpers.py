"""Helpers for the fault, crash and Redis-restart tests: tuned configs, batches, worker and Redis processes.

Everything here drives real parts: a ``ktsync worker`` command in a process group of its own (so a
test can SIGKILL the whole tree, or one pool child), and a ``redis-server`` with AOF that a test owns
and may restart. Whatever a helper starts, it stops in ``finally``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
import yaml

from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.core.broker import UNACKED_KEY, key_queue_registry, sub_queues
from ktsync.core.processes import stop
from ktsync.core.redis_server import find_redis_server, free_port
from ktsync.worker.deadletter import DeadLetterStore
from ktsync.worker.recovery import live_sessions
from ktsync.worker.telemetry import read_timeline
from tests.integration.sync_helpers import LIFECYCLE, LIST, SOURCE, Outcomes, upsert, wait_for

STOP_TIMEOUT = 10.0
BATCH_TAGS = frozenset({LIFECYCLE.format("lead"), LIST.format("Newsletter")})


def tune(path: Path, **sections: Mapping[str, Any]) -> Path:
    """Merge ``sections`` (e.g. ``retry={"max_attempts": 30}``) into the config file at ``path``."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def batch(size: int, *, name: str = "c", start: int = 0) -> list[dict[str, Any]]:
    """``size`` new contacts, each with the two tags of :data:`BATCH_TAGS`."""
    tags: dict[str, Any] = {"lifecyclestage": "lead", "lists": ["Newsletter"]}
    return [
        upsert(f"{name}{i}", f"{name}{i}@faults.example", firstname=f"N{i}", **tags)
        for i in range(start, start + size)
    ]


def assert_each_synced_once(fake: FakeControl, messages: list[dict[str, Any]]) -> None:
    """Every message's contact is in KlickTipp exactly once, with its CRM id and the batch's tags."""
    state = fake.state()
    names = {str(t["id"]): t["name"] for t in state["tags"]}
    per_email = Counter(c["email"] for c in state["contacts"])
    by_email = {c["email"]: c for c in state["contacts"]}
    problems = []
    for message in messages:
        email = message["email"]
        if per_email[email] != 1:
            problems.append(f"{email}: {per_email[email]} contacts")
            continue
        record = by_email[email]
        tags = {names[str(t)] for t in record["manual_tags"]}
        if record["fields"].get(CRM_CONTACT_ID_FIELD) != message["crm_contact_id"] or tags != BATCH_TAGS:
            problems.append(f"{email}: fields {record['fields']}, tags {sorted(tags)}")
    duplicated_tags = [name for name, n in Counter(names.values()).items() if n > 1]
    assert not problems, problems
    assert not duplicated_tags, duplicated_tags


def reasons(store: DeadLetterStore) -> Counter[str]:
    """Dead letters per reason."""
    return Counter(letter.reason for letter in store.list(limit=10_000))


def broker_queues(settings: Settings) -> list[str]:
    """Every broker list ktsync's workers consume: each consumed queue (lanes and the pre-lane queue)
    and its priority lists."""
    return [
        settings.broker_prefix + name
        for queue in settings.worker.consumed_queues
        for name in sub_queues(queue)
    ]


def unacked_key(settings: Settings) -> str:
    """Kombu's hash of delivered but unacknowledged messages."""
    return settings.broker_prefix + UNACKED_KEY


def pending(client: redis.Redis, settings: Settings) -> int:
    """Messages waiting in any consumed queue."""
    return sum(int(client.llen(name)) for name in broker_queues(settings))


def all_done(client: redis.Redis, settings: Settings, outcomes: Outcomes, total: int) -> bool:
    """Every task finished at least once, and nothing is left queued, in flight, deferred or scheduled."""
    return (
        outcomes.finished() >= total
        and pending(client, settings) == 0
        and client.hlen(unacked_key(settings)) == 0
        and client.zcard(f"{settings.key_prefix}:schedule") == 0
        and client.scard(key_queue_registry(settings.key_prefix)) == 0
    )


@dataclass(frozen=True)
class InFlight:
    """A task delivered to a worker and not acknowledged: what kombu's unacked hash knows of it."""

    tag: str
    task_id: str
    queue: str
    crm_contact_id: str


def in_flight(client: redis.Redis, settings: Settings) -> list[InFlight]:
    """The tasks of ktsync's queues delivered to some worker and not acknowledged yet."""
    queues, found = set(settings.worker.consumed_queues), []
    for tag, raw in cast(dict[bytes, bytes], client.hgetall(unacked_key(settings))).items():
        payload, _exchange, queue = json.loads(raw)
        if queue in queues:
            args = json.loads(base64.b64decode(payload["body"]))[0]
            contact = str(args[0].get("crm_contact_id", "")) if args and isinstance(args[0], dict) else ""
            found.append(InFlight(tag.decode(), payload["headers"]["id"], queue, contact))
    return found


def finished_since(client: redis.Redis, settings: Settings, crm_contact_id: str, since: float) -> bool:
    """Whether a task for the contact ended (its timeline has an outcome) after ``since`` (Unix time)."""
    timeline = read_timeline(client, settings.key_prefix, SOURCE, crm_contact_id)
    return any(entry["kind"] == "outcome" and entry["at"] > since for entry in timeline)


def sessions(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The workers whose heartbeat is current (see :func:`ktsync.worker.recovery.live_sessions`)."""
    return live_sessions(client, settings.key_prefix)


# -- a `ktsync worker` process ------------------------------------------------------------------------


class WorkerProcess:
    """``python -m ktsync worker ...`` in a session (process group) of its own; output in a file."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.log = log
        command = [sys.executable, "-m", "ktsync", "worker", "--quiet", "--loglevel=INFO", *args]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                # A SIGKILLed prefork worker cannot remove its billiard temp dir (pymp-*): keep it in
                # the test's own directory, not in /tmp.
                env={**os.environ, **env, "TMPDIR": str(log.parent)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until Celery says ``ready`` (its consumer is connected and consuming)."""
        wait_for(lambda: " ready." in self.output() or self.process.poll() is not None, timeout=timeout)
        assert self.process.poll() is None, self.output()

    def children(self) -> list[int]:
        """Pids of the direct children (prefork pool processes)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL the whole process tree at once (no shutdown handler runs, nothing is acked)."""
        _signal_group(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), escalating to SIGKILL; a no-op for a dead process."""
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        _signal_group(self.pid, signal.SIGKILL)  # pool children left behind, if any


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, sig)


@contextmanager
def worker_process(env: Mapping[str, str], log: Path, *args: str) -> Iterator[WorkerProcess]:
    process = WorkerProcess(env, log, *args)
    try:
        yield process
    finally:
        process.stop()


# -- a redis-server the test owns ---------------------------------------------------------------------


class OwnedRedis:
    """A private redis-server with AOF (fsync on every write) that can be restarted on its port and dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._binary = find_redis_server()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(self._binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir),
                "--daemonize", "no"]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self._process
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)

        def answers() -> bool:
            assert process.poll() is None, "redis-server exited"
            try:
                return bool(client.ping())
            except redis.RedisError:  # refused, or still loading the AOF
                return False

        try:
            wait_for(answers, timeout=10)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis finishes the AOF and exits (a restart, not a crash)."""
        if self._process is not None:
            stop(self._process, timeout=STOP_TIMEOUT)
        self._process = None

    def restart(self) -> None:
        """Stop, then start again on the same port and directory (the AOF brings the data back)."""
        self.stop()
        self.start()


@contextmanager
def owned_redis(workdir: Path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
