"""The producer examples of ``examples/producers/``, run as another team would run them.

Each example runs as it ships, in a process of its own (plain Celery from Python, celery-node from
Node, curl + openssl through the signed generic webhook), onto the documented queue ``ktsync.live``
of a private Redis with no broker prefix; a real Celery worker takes the message to the fake
KlickTipp over loopback. The Node example's ``npm ci`` runs in place (``node_modules/`` is ignored by
git) and is skipped on the next run while ``package-lock.json`` is unchanged.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import RedisHandle, ephemeral_redis
from ktsync.producers.webhooks.secrets import WebhookSecrets
from ktsync.worker.lanemetrics import read_latency
from tests.integration.fault_helpers import all_done, tune
from tests.integration.sync_helpers import (
    LIFECYCLE,
    LIST,
    Outcomes,
    manual_tag_names,
    the_contact,
    upsert,
    wait_for,
)
from tests.webhooks.helpers import serving

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "producers"
NODE_EXAMPLE = EXAMPLES / "node_celery"
RUN_TIMEOUT = 60.0
NPM_TIMEOUT = 300.0
SECRET = "example-webhook-secret"
TAGS = {LIFECYCLE.format("lead"), LIST.format("Newsletter")}


@pytest.fixture(scope="module")
def redis_handle() -> Iterator[RedisHandle]:
    """A Redis of our own even when KTSYNC_REDIS_URL names one: the examples use unprefixed queue names."""
    with ephemeral_redis() as handle:
        yield handle


@pytest.fixture
def config_file(config_file: Callable[..., Path]) -> Callable[..., Path]:
    """The shared config file, with the shipped queue name (``ktsync``: lanes ``ktsync.live``/``.bulk``)."""

    def write(**source_overrides: Any) -> Path:
        return tune(config_file(**source_overrides), worker={"queue": "ktsync"})

    return write


@pytest.fixture
def run_example(redis_handle: RedisHandle, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a command as a producer would: only the documented variables set, output captured."""

    def run(*command: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("KTSYNC_")}
        return subprocess.run(
            [str(part) for part in command],
            env={**environ, "KTSYNC_REDIS_URL": redis_handle.url, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    return run


def message_file(tmp_path: Path, crm_contact_id: str, email: str) -> tuple[Path, dict[str, Any]]:
    message = upsert(crm_contact_id, email, firstname="Kim", lifecyclestage="lead", lists=["Newsletter"])
    path = tmp_path / "message.json"
    path.write_text(json.dumps(message), encoding="utf-8")
    return path, message


@pytest.fixture
def assert_synced(
    fake: FakeControl, outcomes: Outcomes, redis_client: redis.Redis, settings: Settings
) -> Callable[..., None]:
    """Check: one task synced the contact (fields, tags) and was acknowledged, nothing left anywhere;
    the worker took it from the live lane and knew when it was enqueued (a latency observation)."""

    def check(email: str, crm_contact_id: str, **fields: str) -> None:
        assert outcomes.wait(1)["synced"] == 1
        wait_for(lambda: all_done(redis_client, settings, outcomes, 1))
        record = the_contact(fake, email)
        assert record["fields"][CRM_CONTACT_ID_FIELD] == crm_contact_id
        assert {key: record["fields"].get(key) for key in fields} == fields
        assert manual_tag_names(fake, record) == TAGS
        latency = read_latency(redis_client, settings.key_prefix)
        assert (latency[Lane.LIVE].count, latency[Lane.BULK].count) == (1, 0)

    return check


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_python_example_enqueues_with_plain_celery_and_the_contact_arrives(
    worker: Celery,
    run_example: Callable[..., subprocess.CompletedProcess[str]],
    assert_synced: Callable[..., None],
) -> None:
    script = EXAMPLES / "python_celery" / "send_contact.py"
    # Given the example imports nothing of ktsync: Celery (and its kombu) and the standard library only
    assert imported_modules(script) - set(sys.stdlib_module_names) <= {"celery", "kombu"}

    # When it sends the shipped sample message (../contact.json)
    result = run_example(sys.executable, script)

    # Then it printed the task id, and the contact is in KlickTipp with its fields and tags
    assert result.returncode == 0, result.stderr
    uuid.UUID(result.stdout.strip())
    assert_synced("alex@shop.example", "501", fieldFirstName="Alex", fieldLastName="Muster")


@pytest.fixture(scope="module")
def node_example() -> Path:
    """The Node example with its locked dependencies installed (``npm ci`` once per lock file)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the celery-node example cannot run here")
    lock = hashlib.sha256((NODE_EXAMPLE / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = NODE_EXAMPLE / "node_modules" / f".ktsync-npm-ci-{lock}"
    if not stamp.exists():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_EXAMPLE,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
        stamp.touch()
    return NODE_EXAMPLE


def test_the_node_example_enqueues_with_celery_node_and_the_contact_arrives(
    node_example: Path,
    worker: Celery,
    run_example: Callable[..., subprocess.CompletedProcess[str]],
    assert_synced: Callable[..., None],
    tmp_path: Path,
) -> None:
    # Given a contract-v1 message in a file
    path, message = message_file(tmp_path, "node-1", "node@examples.example")

    # When the Node service sends it with celery-node
    result = run_example("node", node_example / "send_contact.js", path)

    # Then it printed the task id, and the contact is in KlickTipp with its fields and tags
    assert result.returncode == 0, result.stderr
    uuid.UUID(result.stdout.strip())
    assert_synced(message["email"], "node-1", fieldFirstName="Kim")


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are not installed: the webhook example cannot run here",
)
def test_the_curl_example_signs_a_webhook_and_the_contact_arrives(
    worker: Celery,
    settings: Settings,
    run_example: Callable[..., subprocess.CompletedProcess[str]],
    assert_synced: Callable[..., None],
    tmp_path: Path,
) -> None:
    # Given the webhook receiver with a generic secret, and a contract-v1 message in a file
    path, message = message_file(tmp_path, "curl-1", "curl@examples.example")
    script = EXAMPLES / "webhook_curl" / "send_contact.sh"
    with serving(settings, WebhookSecrets(generic_secret=SECRET)) as base_url:
        url = f"{base_url}/webhooks/generic"

        # When the script signs and posts it, and once more with the wrong secret
        sent = run_example("sh", script, path, KTSYNC_WEBHOOK_URL=url, KTSYNC_WEBHOOK_SECRET=SECRET)
        forged = run_example("sh", script, path, KTSYNC_WEBHOOK_URL=url, KTSYNC_WEBHOOK_SECRET="wrong")

    # Then the receiver enqueued the signed one, refused the other, and the contact is in KlickTipp
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["enqueued"] == 1
    assert (forged.returncode, forged.stderr.strip()) == (1, "HTTP 401")
    assert_synced(message["email"], "curl-1", fieldFirstName="Kim")
