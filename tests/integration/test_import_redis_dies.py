"""Redis going away in the middle of `ktsync import` / `ktsync enqueue`: the run stops with how far it
got, the error in one line, exit 1 and the command that goes on from there; never a traceback.

The test owns its Redis (AOF, fsync on every write: what Redis acknowledged survives a restart), stops
it while thousands of lines are still to go, starts it again and runs the resume command printed.
Every contact of the file is then queued; only the chunk that was on the wire when Redis went away may
be queued twice (harmless: tasks are idempotent).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ktsync.config.settings import Settings, load_settings
from ktsync.core.lanes import Lane
from ktsync.producers.imports import CHUNK
from tests.integration.fault_helpers import OwnedRedis, tune
from tests.integration.sync_helpers import wait_for
from tests.integration.test_import_files import queued

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # Redis stopped and started mid-import: seconds each

LINES = 12_000
STOP_AT = 2_000  # messages queued when Redis is stopped
COMMANDS = {
    "enqueue": ("enqueue",),
    "import": ("import", "--source", "hubspot", "--lane", "live"),  # no worker: bulk would wait for room
}


@pytest.fixture
def own_env(env: dict[str, str], owned_server: OwnedRedis) -> dict[str, str]:
    tune(Path(env["KTSYNC_CONFIG"]), redis={"url": owned_server.url, "broker_prefix": ""})
    return {**env, "KTSYNC_REDIS_URL": owned_server.url}  # wins over a KTSYNC_REDIS_URL the suite runs with


@pytest.fixture
def contacts(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(1, LINES + 1):
            out.write(json.dumps({"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": str(i),
                                  "email": f"c{i}@shop.example", "occurred_at": 1_795_341_600}) + "\n")  # fmt: skip
    return path


def queued_ids(url: str, settings: Settings) -> list[str]:
    """The crm_contact_id of every message waiting in the live queue."""
    client = redis.Redis.from_url(url)
    try:
        return [message["crm_contact_id"] for message in queued(client, settings, Lane.LIVE)]
    finally:
        client.close()


def run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ktsync", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
def test_redis_going_away_mid_way_stops_with_how_far_it_got_and_the_resume_enqueues_the_rest(
    command: str, own_env: dict[str, str], owned_server: OwnedRedis, contacts: Path
) -> None:
    settings = load_settings(own_env)
    name, *options = COMMANDS[command]
    queue = settings.worker.lane_queue(Lane.LIVE)
    client = redis.Redis.from_url(owned_server.url)

    # Given a file of 12,000 contacts being enqueued
    process = run(own_env, name, str(contacts), *options)
    try:
        # When Redis goes away after 2,000 of them
        wait_for(lambda: client.llen(queue) >= STOP_AT or process.poll() is not None, timeout=60)
        owned_server.stop()
        _, err = process.communicate(timeout=60)
    finally:
        client.close()
        if process.poll() is None:
            process.kill()

    # Then the run stops with exit 1, the error in one line and how far it got; no traceback
    assert process.returncode == 1, err
    assert "Traceback" not in err
    assert re.search(r"^stopped: could not enqueue: Redis is unreachable \(.+\)$", err, re.MULTILINE), err
    done = re.search(r"^lines 1-(\d+) are done \((\d+) enqueued, 0 rejected\)", err, re.MULTILINE)
    assert done is not None, err
    through, enqueued = int(done.group(1)), int(done.group(2))
    assert through == enqueued, err
    assert STOP_AT <= enqueued < LINES, err
    resume = f"--start-line {through + 1}"
    assert f"to go on: ktsync {name} {contacts}" in err, err
    assert resume in err, err
    assert "running it again from the start is safe" in err

    # And what it says is done is in Redis (restarted: the AOF kept every acknowledged write)
    owned_server.start()
    before = queued_ids(owned_server.url, settings)
    assert set(map(str, range(1, through + 1))) <= set(before)
    assert len(before) <= through + CHUNK  # at most the chunk that was on the wire, in part

    # When the operator runs the command it printed
    resumed = run(own_env, name, str(contacts), *options, *resume.split())
    out, err = resumed.communicate(timeout=120)

    # Then it enqueues the rest, and every contact of the file is queued (the chunk in doubt maybe twice)
    assert resumed.returncode == 0, err
    assert f"enqueued {LINES - through}" in out
    after = queued_ids(owned_server.url, settings)
    assert set(after) == set(map(str, range(1, LINES + 1)))
    assert len(after) <= LINES + CHUNK
