"""Celery's own command line loads ktsync's app: ``celery -A ktsync.worker.celery_app ...``.

Operators use ``celery inspect``, ``events`` and ``purge`` as in any Celery project; the module-level app
is built from the same settings (``KTSYNC_CONFIG`` and the environment) as ``ktsync worker``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane

pytestmark = pytest.mark.integration

APP = "ktsync.worker.celery_app"


def celery(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", APP, *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_inspect_ping_active_stats_and_registered_reach_a_running_worker(
    celery_worker: Celery, env: dict[str, str]
) -> None:
    ping = celery("inspect", "ping", "--timeout", "5", "--json", env=env)
    assert ping.returncode == 0, ping.stderr
    replies = json.loads(ping.stdout)
    assert replies
    assert all(reply == {"ok": "pong"} for reply in replies.values())

    registered = celery("inspect", "registered", "--timeout", "5", "--json", env=env)
    assert registered.returncode == 0, registered.stderr
    names = next(iter(json.loads(registered.stdout).values()))
    assert {"ktsync.sync_contact", "ktsync.delete_contact", "ktsync.notify_crm"} <= set(names)

    for command in ("active", "stats"):
        result = celery("inspect", command, "--timeout", "5", "--json", env=env)
        assert result.returncode == 0, (command, result.stderr)
        assert json.loads(result.stdout), command


def test_purge_empties_the_named_lane_queue_only(
    settings: Settings, env: dict[str, str], redis_client: redis.Redis
) -> None:
    bulk, live = settings.worker.lane_queue(Lane.BULK), settings.worker.lane_queue(Lane.LIVE)
    producer = Celery(broker=settings.redis_url, set_as_current=False)
    producer.conf.broker_transport_options = {"global_keyprefix": settings.broker_prefix}
    with producer.connection_for_write() as conn:
        for queue in (bulk, bulk, live):
            producer.send_task("ktsync.sync_contact", args=[{}], queue=queue, connection=conn)
    prefix = settings.broker_prefix
    assert redis_client.llen(f"{prefix}{bulk}") == 2

    purged = celery("purge", "-Q", bulk, "-f", env=env)
    assert purged.returncode == 0, purged.stderr
    assert "Purged 2 messages" in purged.stdout
    assert redis_client.llen(f"{prefix}{bulk}") == 0
    assert redis_client.llen(f"{prefix}{live}") == 1


@pytest.mark.slow
def test_events_dump_shows_the_workers(celery_worker: Celery, env: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "events.out"
    with output.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", APP, "events", "--dump"],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "] heartbeat: " not in output.read_text(errors="replace") and time.monotonic() < deadline:
            assert process.poll() is None, output.read_text(errors="replace")
            time.sleep(0.2)
        assert "] heartbeat: " in output.read_text(errors="replace")
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_module_app_reads_no_configuration_until_used(env: dict[str, str]) -> None:
    broken = {**env, "KTSYNC_CONFIG": "/nonexistent/ktsync.yaml"}
    imported = subprocess.run(
        [sys.executable, "-c", f"import {APP} as m; print(m.create_app.__name__)"],
        capture_output=True, text=True, env=broken, timeout=60, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    loaded = celery("inspect", "ping", "--timeout", "1", env=broken)
    assert loaded.returncode != 0
    assert "/nonexistent/ktsync.yaml" in loaded.stdout + loaded.stderr
