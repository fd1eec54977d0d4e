"""`ktsync flower`: Flower on ktsync's broker, behind basic auth from the environment, /metrics included."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests
from celery import Celery

from ktsync.config.settings import Settings
from tests.ops.conftest import Service, ktsync

pytestmark = pytest.mark.slow  # every test starts `ktsync flower` as a subprocess

AUTH = ("ops", "flower-test-secret")
WORKER_ONLINE = 'flower_worker_online{worker="'


def start_flower(service: Callable[..., Service], *args: str, auth: str | None = ":".join(AUTH)) -> str:
    extra = {"FLOWER_BASIC_AUTH": auth} if auth else {}
    flower = service("flower", "--port", "0", "--address", "127.0.0.1", *args, extra_env=extra)
    port = flower.wait_for(r"Visit me at http://127\.0\.0\.1:(\d+)").group(1)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while requests.get(f"{base}/healthcheck", timeout=5).status_code != 200:  # open: for health checks
        assert time.monotonic() < deadline, flower.text()
        time.sleep(0.1)
    return base


def test_flower_requires_basic_auth_everywhere_and_serves_its_metrics(
    celery_worker: Celery, service: Callable[..., Service]
) -> None:
    # Given Flower started with FLOWER_BASIC_AUTH, and a ktsync worker sending heartbeats
    base = start_flower(service)

    # Then without credentials, or with wrong ones, nothing but the health check answers
    for path in ("/metrics", "/", "/api/workers"):
        assert requests.get(base + path, timeout=5).status_code == 401, path
    denied = requests.get(f"{base}/metrics", auth=("ops", "wrong"), timeout=5)
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Basic")

    # And with them, Flower's own metrics show the worker online (once its heartbeat arrived)
    deadline, text = time.monotonic() + 30, ""
    while WORKER_ONLINE not in text and time.monotonic() < deadline:
        response = requests.get(f"{base}/metrics", auth=AUTH, timeout=5)
        assert response.status_code == 200
        text = response.text
        time.sleep(0.2)
    online = [line for line in text.splitlines() if line.startswith(WORKER_ONLINE)]
    assert online, text
    assert online[0].endswith(" 1.0")


def test_flower_refuses_to_start_without_credentials(env: dict[str, str]) -> None:
    result = ktsync("flower", "--port", "0", env=env, timeout=30)

    assert result.returncode == 1
    assert "FLOWER_BASIC_AUTH is not set" in result.stderr


@pytest.mark.parametrize("value", ["no-colon-secret", ":password-without-user", "user-without-password:"])
def test_malformed_credentials_are_refused_without_echoing_them(env: dict[str, str], value: str) -> None:
    result = ktsync("flower", env={**env, "FLOWER_BASIC_AUTH": value}, timeout=30)

    assert result.returncode == 1
    assert "must be user:password" in result.stderr
    assert value not in result.stderr


def test_unauthenticated_is_an_explicit_choice(redis_client: object, service: Callable[..., Service]) -> None:
    base = start_flower(service, "--unauthenticated", auth=None)

    response = requests.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200
    assert "flower_events_total" in response.text


def test_flower_shows_each_lane_queue_the_workers_read(
    celery_worker: Celery, service: Callable[..., Service], settings: Settings
) -> None:
    # Given Flower and a ktsync worker
    base = start_flower(service)

    # Then Flower's broker view lists every queue the worker reads: the live lane, the queue from
    # before lanes, the bulk lane (with their depths)
    deadline, names = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        response = requests.get(f"{base}/api/queues/length", auth=AUTH, timeout=10)
        assert response.status_code == 200
        names = [queue["name"] for queue in response.json()["active_queues"]]
        if names:
            break
        time.sleep(0.3)
    assert sorted(names) == sorted(settings.worker.consumed_queues), names
