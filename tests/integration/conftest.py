"""Integration fixtures: the fake KlickTipp over loopback, a config file, a real Celery worker.

Nothing here is mocked: the worker is Celery's own (`start_worker`, threads pool) consuming from the
real Redis, and every KlickTipp call is real HTTP to the fake KlickTipp's process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.contrib.testing.worker import start_worker

from fake_crm.testing import HUBSPOT_TOKEN, RunningFakeCrm, running_fake_crm
from fake_klicktipp.testing import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    SINGLE_OPT_IN_LIST_ID,
    FakeControl,
    RunningFake,
)
from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, load_settings
from ktsync.core.redis_server import RedisHandle
from ktsync.producers import Producer
from ktsync.worker.celery_app import create_app
from tests.integration.fault_helpers import OwnedRedis, owned_redis
from tests.integration.sync_helpers import Outcomes, Stores, wait_for

pytestmark = pytest.mark.integration
__all__ = ["wait_for"]  # where the tests have always imported it from


@pytest.fixture(scope="session")
def crm_server() -> Iterator[RunningFakeCrm]:
    """The fake CRM APIs (HubSpot, Close, Zoho) over loopback; each test seeds what it needs."""
    with running_fake_crm() as server:
        yield server


@pytest.fixture
def hubspot_api_env(crm_server: RunningFakeCrm) -> dict[str, str]:
    """The workers' (and the operator's) HubSpot API access, pointed at the fake CRM."""
    return {"HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN, "HUBSPOT_API_BASE_URL": crm_server.base_url}


@pytest.fixture
def owned_server(tmp_path: Path) -> Iterator[OwnedRedis]:
    """A redis-server of this test's own, which the test may stop and start again."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    with owned_redis(workdir) as server:
        yield server


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
        # Tests exercise the sync, not the budget: a limiter this generous never makes them wait
        # (the rate-limit tests set their own).
        document["rate"] = {"per_second": 1000, "burst": 1000, "max_in_flight": 0}
        document["worker"]["queue"] = namespace
        document["sources"]["default"].update(listid=SINGLE_OPT_IN_LIST_ID, **source_overrides)
        path = tmp_path / "ktsync.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def source_config() -> dict[str, Any]:
    """Overrides of ``sources.default`` for the test's config file; override or parametrize it."""
    return {}


@pytest.fixture
def extra_env() -> dict[str, str]:
    """Environment variables added for the test (e.g. ``KTSYNC_*`` overrides); override or parametrize."""
    return {}


@pytest.fixture
def env(
    config_file: Callable[..., Path],
    redis_client: Any,
    source_config: dict[str, Any],
    extra_env: dict[str, str],
) -> dict[str, str]:
    """The environment a worker or CLI runs with: config file and session credentials for the fake."""
    return {
        "KTSYNC_CONFIG": str(config_file(**source_config)),
        "KLICKTIPP_USERNAME": DEMO_USERNAME,
        "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
        **extra_env,
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def app(settings: Settings, env: dict[str, str]) -> Celery:
    app = create_app(settings, env)
    # BRPOP for 0.1 s instead of 1 s: an idle worker notices the end of a test sooner (faster teardown).
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.1}
    return app


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


@pytest.fixture
def outcomes(redis_client: Any, settings: Settings) -> Outcomes:
    """The workers' outcome counters; ``outcomes.wait(n)`` waits for n finished tasks."""
    return Outcomes(redis_client, settings)


@pytest.fixture
def stores(redis_client: Any, settings: Settings) -> Stores:
    """Contact state, outbound stream, review list and dead letters as the workers left them."""
    return Stores(redis_client, settings)
