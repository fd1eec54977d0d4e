"""Shared fixtures: a real Redis (ours, or the one KTSYNC_REDIS_URL names), isolated per test.

With no KTSYNC_REDIS_URL the suite starts a private redis-server and flushes it between tests.
With KTSYNC_REDIS_URL it never flushes: every key it writes carries a per-run prefix (ktsync's own
keys and, through kombu's global_keyprefix, Celery's), and only those keys are deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from fake_klicktipp.testing import FakeControl, RunningFake, running_fake
from ktsync.core.redis_server import RedisHandle, resolve_redis
from tests.redis_keys import forget_keys

RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def redis_handle() -> Iterator[RedisHandle]:
    with resolve_redis() as handle:
        yield handle


@pytest.fixture
def namespace() -> str:
    """A key prefix of this test's own."""
    return f"ktsync-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def redis_client(redis_handle: RedisHandle, namespace: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_handle.url)
    if redis_handle.owned:
        client.flushdb()
    yield client
    forget_keys(client, redis_handle, namespace)
    client.close()


@pytest.fixture(scope="session")
def fake_server() -> Iterator[RunningFake]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: RunningFake) -> FakeControl:
    """The fake KlickTipp, reset to its seed (and no faults) for every test."""
    fake_server.control.reset()
    return fake_server.control
