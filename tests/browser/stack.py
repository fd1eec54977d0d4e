"""The console's world for browser tests: real Redis, the fake KlickTipp, a `ktsync worker` and a
`ktsync console`, each a process of its own, plus ways to seed dead letters through them.

The config file is built as tests/integration/conftest.py builds it (the default one, pointed at the
test's Redis keys and the fake), only once per module: a browser test is a user session, not a unit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

from fake_klicktipp.testing import DEMO_PASSWORD, DEMO_USERNAME, SINGLE_OPT_IN_LIST_ID, FakeControl
from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, load_settings
from ktsync.core.processes import stop
from ktsync.core.redis_server import RedisHandle
from ktsync.producers import Producer
from ktsync.worker.deadletter import RedisDeadLetterStore
from ktsync.worker.state import RedisStateStore
from tests.integration.fault_helpers import batch, worker_process
from tests.integration.sync_helpers import SOURCE, upsert, wait_for
from tests.redis_keys import forget_keys

OPERATOR = ("op", "op-secret-1")
VIEWER = ("viewer", "viewer-secret-1")
READY = re.compile(r"ktsync console listening on (http://\S+)")
STARTUP_TIMEOUT = 30.0


def write_config(path: Path, *, namespace: str, redis_handle: RedisHandle, fake_url: str) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["redis"].update(
        url=redis_handle.url,
        key_prefix=namespace,
        broker_prefix="" if redis_handle.owned else f"{namespace}:",
    )
    document["klicktipp"]["base_url"] = fake_url
    document["rate"] = {"per_second": 1000, "burst": 1000, "max_in_flight": 0}
    # Seeding fails contacts on purpose: two quick attempts, not eight with minutes of backoff.
    document["retry"].update(max_attempts=2, min_backoff=0.05, max_backoff=0.2)
    document["worker"]["queue"] = namespace
    document["sources"]["default"].update(listid=SINGLE_OPT_IN_LIST_ID)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def stack_env(config: Path) -> dict[str, str]:
    """What `ktsync worker` gets (as the integration tests' ``env``), plus the console's users."""
    return {
        "KTSYNC_CONFIG": str(config),
        "KLICKTIPP_USERNAME": DEMO_USERNAME,
        "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
        "KTSYNC_CONSOLE_AUTH": ":".join(OPERATOR),
        "KTSYNC_CONSOLE_VIEWERS": ":".join(VIEWER),
        "KTSYNC_CONSOLE_SECRET": "browser-tests-session-key",
    }


@contextmanager
def console_process(env: Mapping[str, str], log: Path) -> Iterator[str]:
    """``ktsync console --port 0`` until it prints its ready line; yields its base URL."""
    command = [sys.executable, "-m", "ktsync", "console", "--host", "127.0.0.1", "--port", "0"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def ready() -> str | bool:
            found = READY.search(log.read_text(encoding="utf-8", errors="replace"))
            return found.group(1).rstrip("/") if found else process.poll() is not None

        url = wait_for(ready, timeout=STARTUP_TIMEOUT, interval=0.1)
        assert isinstance(url, str), f"ktsync console exited ({process.returncode}):\n{log.read_text()}"
        yield url
    finally:
        stop(process, timeout=10)


@dataclass
class Stack:
    """Everything a browser test talks to, and the Redis-side view of what the workers did."""

    base_url: str
    env: dict[str, str] = field(repr=False)  # holds the test credentials
    settings: Settings = field(repr=False)
    client: redis.Redis
    fake: FakeControl
    producer: Producer
    logs: Path

    @property
    def dead_letters(self) -> RedisDeadLetterStore:
        return RedisDeadLetterStore(self.client, self.settings.key_prefix)

    @property
    def state(self) -> RedisStateStore:
        return RedisStateStore(self.client, self.settings.key_prefix)

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of ``console.log`` or ``worker.log`` (added to a failed test's report)."""
        path = self.logs / name
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def clear_dead_letters(self) -> None:
        letters = self.dead_letters.list(limit=100_000)
        self.dead_letters.remove_many([letter.id for letter in letters])

    def dead_letter_server_errors(self, count: int, *, name: str) -> list[dict[str, Any]]:
        """``count`` new contacts dead-lettered for real: KlickTipp answers 500 until their retries run
        out (``retries_exhausted``); then KlickTipp is healthy again, so a replay syncs them."""
        messages = batch(count, name=name)
        self.fake.faults(error_rate=1.0, error_status=500)
        try:
            ids = self.producer.enqueue_many(messages)
            wait_for(lambda: all(self.dead_letters.get(i) for i in ids), timeout=30)
        finally:
            self.fake.faults(error_rate=0.0)
        return messages

    def dead_letter_mapping(self, crm_contact_id: str) -> str:
        """A contact whose CRM value cannot be converted (a website without a scheme): ``mapping``."""
        message = upsert(crm_contact_id, f"{crm_contact_id}@mapping.example", website="www.no-scheme.example")
        task_id = self.producer.enqueue(message)
        wait_for(lambda: self.dead_letters.get(task_id), timeout=30)
        return task_id

    def sync(self, message: dict[str, Any]) -> None:
        """Enqueue one upsert and wait until the worker has applied it."""
        self.producer.enqueue(message)
        wait_for(lambda: self.state.get(SOURCE, message["crm_contact_id"]), timeout=30)


@contextmanager
def running_stack(
    workdir: Path, *, namespace: str, redis_handle: RedisHandle, fake: FakeControl
) -> Iterator[Stack]:
    config = write_config(
        workdir / "ktsync.yaml", namespace=namespace, redis_handle=redis_handle, fake_url=fake.base_url
    )
    env = stack_env(config)
    settings = load_settings(env)
    client = redis.Redis.from_url(redis_handle.url)
    if redis_handle.owned:
        client.flushdb()
    fake.reset()  # once, before the worker caches any reference data
    try:
        with (
            worker_process(env, workdir / "worker.log", "--pool=threads", "--concurrency=4") as worker,
            Producer(settings) as producer,
        ):
            worker.wait_ready()
            with console_process(env, workdir / "console.log") as base_url:
                yield Stack(base_url, env, settings, client, fake, producer, workdir)
    finally:
        _forget_keys(client, redis_handle, namespace)
        client.close()


def _forget_keys(client: redis.Redis, redis_handle: RedisHandle, namespace: str) -> None:
    with suppress(redis.RedisError):
        forget_keys(client, redis_handle, namespace)
