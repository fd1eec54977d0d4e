"""Integration fixtures: the fake KlickTipp over loopback, a config file, a real Celery worker.

Nothing here is mocked: the worker is Celery's own (`start_worker`, threads pool) consuming from the
real Redis, and every KlickTipp call is real HTTP to the fake KlickTipp's process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.contrib.testing.worker import start_worker

from config.settings import DEFAULT_CONFIG_PATH, Settings, load_settings
from fake_klicktipp.testing import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    SINGLE_OPT_IN_LIST_ID,
    FakeControl,
    RunningFake,
    running_fake,
)
from ktsync.redis_server import RedisHandle
from producers import Producer
from worker.celery_app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def fake_server() -> Iterator[RunningFake]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: RunningFake) -> FakeControl:
    """The fake KlickTipp, reset to its seed (and no faults) for every test."""
    fake_server.control.reset()
    return fake_server.control


@pytest.fixture
def config_file(
    tmp_path: Path, namespace: str, redis_handle: RedisHandle, fake_server: RunningFake
) -> Callable[..., Path]:
    """Write a config file: the default one, pointed at the test's Redis keys and the fake."""

    def write(**source_overrides: Any) -> Path:
        document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
        document["redis"].update(
            url=redis_handle.url,
            key_prefix=namespace,
            broker_prefix="" if redis_handle.owned else f"{namespace}:",
        )
        document["klicktipp"]["base_url"] = fake_server.base_url
        document["worker"]["queue"] = namespace
        document["sources"]["default"].update(listid=SINGLE_OPT_IN_LIST_ID, **source_overrides)
        path = tmp_path / "ktsync.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def env(config_file: Callable[..., Path], redis_client: Any) -> dict[str, str]:
    """The environment a worker or CLI runs with: config file and session credentials for the fake."""
    return {
        "KTSYNC_CONFIG": str(config_file()),
        "KLICKTIPP_USERNAME": DEMO_USERNAME,
        "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def app(settings: Settings, env: dict[str, str]) -> Celery:
    return create_app(settings, env)


@pytest.fixture
def worker(app: Celery, fake: FakeControl) -> Iterator[Celery]:
    """A real Celery worker (threads pool) consuming the test's queue in this process."""
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="WARNING"):
        yield app
    app.ktsync_runtime.close()


@pytest.fixture
def producer(settings: Settings) -> Iterator[Producer]:
    with Producer(settings) as producer:
        yield producer


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail with its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value
