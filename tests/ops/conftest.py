"""Fixtures for the operations tests: a config on the test's own Redis keys, and real `ktsync` processes.

Every key the tests write (ktsync's and, through ``broker_prefix``, Celery's) carries the test's
namespace; the shared ``redis_client`` fixture removes them afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from celery import Celery
from celery.contrib.testing.worker import start_worker

from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, load_settings
from ktsync.core.redis_server import RedisHandle
from ktsync.worker.celery_app import create_app

LIST_ID = 23
KLICKTIPP_USERNAME = "ops-test@klicktipp.example"
STARTUP_TIMEOUT = 30.0


@pytest.fixture
def rate_config() -> dict[str, Any]:
    """The limiter's settings: so slow by default that a spent token is still missing when read."""
    return {"per_second": 0.01, "burst": 10, "max_in_flight": 4}


@pytest.fixture
def config_path(
    tmp_path: Path, namespace: str, redis_handle: RedisHandle, rate_config: dict[str, Any]
) -> Path:
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    # A broker prefix even on a private Redis: the readers must find kombu's keys under it.
    document["redis"].update(url=redis_handle.url, key_prefix=namespace, broker_prefix=f"{namespace}:")
    document["worker"]["queue"] = namespace
    document["rate"] = {**document["rate"], **rate_config}
    document["sources"]["default"]["listid"] = LIST_ID
    path = tmp_path / "ktsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def env(config_path: Path, redis_client: redis.Redis) -> dict[str, str]:
    """What a ``ktsync`` process runs with (no KTSYNC_* from the developer's shell leaks in)."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("KTSYNC_", "KLICKTIPP_", "FLOWER_"))
    }
    return {
        **inherited,
        "KTSYNC_CONFIG": str(config_path),
        "KLICKTIPP_USERNAME": KLICKTIPP_USERNAME,
        "KLICKTIPP_PASSWORD": "not-used",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


def ktsync(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``ktsync`` command line to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ktsync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


class Service:
    """A long-running ``ktsync`` process whose stdout and stderr go to files we can search."""

    def __init__(self, process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> None:
        self.process, self.stdout, self.stderr = process, stdout, stderr

    def text(self) -> str:
        return self.stdout_text() + self.stderr_text()

    def stdout_text(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def stderr_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} from {self.process.args}; output:\n{self.text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running(*args: str, env: dict[str, str], output: Path) -> Iterator[Service]:
    """Start ``ktsync ARGS`` (output in ``output``.out/.err); always stop exactly that process."""
    stdout, stderr = output.with_suffix(".out"), output.with_suffix(".err")
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "ktsync", *args], stdout=out, stderr=err, env=env)
    service = Service(process, stdout, stderr)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def service(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[..., Service]]:
    """``service("metrics", "--port", "0")``: a running ``ktsync`` command, stopped after the test."""
    started: list[Any] = []

    def start(*args: str, extra_env: dict[str, str] | None = None) -> Service:
        context = running(
            *args, env={**env, **(extra_env or {})}, output=tmp_path / f"{args[0]}-{len(started)}"
        )
        started.append(context)
        return context.__enter__()

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def celery_worker(settings: Settings, env: dict[str, str]) -> Iterator[Celery]:
    """A real ktsync Celery worker (threads pool) on the test's queue, sending heartbeats."""
    app = create_app(settings, env)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.1}
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, without_heartbeat=False,
                      loglevel="WARNING"):  # fmt: skip
        yield app
    app.ktsync_runtime.close()
