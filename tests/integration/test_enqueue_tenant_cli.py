"""`ktsync enqueue --tenant` and `ktsync import --tenant`: the tenant set on every line that names none,
a line naming another rejected, an unknown or disabled tenant refused up front with the reason."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from ktsync.config.registry import RedisTenantRegistry
from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.exit_codes import EXIT_REJECTED, EXIT_USAGE
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration

ACME = {"credentials": {"KLICKTIPP_USERNAME": "acme-shop", "KLICKTIPP_PASSWORD": {"env": "ACME_PASSWORD"}}}


def queued(client: redis.Redis, settings: Settings, lane: Lane) -> list[dict[str, Any]]:
    raw = client.lrange(settings.broker_prefix + settings.worker.lane_queue(lane), 0, -1)
    return [json.loads(base64.b64decode(json.loads(item)["body"]))[0][0] for item in reversed(raw)]


def line(crm_id: str, **extra: Any) -> str:
    return json.dumps({"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": crm_id,
                       "email": f"c{crm_id}@shop.example", "occurred_at": 1_795_341_600, **extra})  # fmt: skip


def test_enqueue_with_a_tenant_sets_it_and_rejects_a_line_for_another(
    env: dict[str, str], settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    RedisTenantRegistry(redis_client, settings.deployment_prefix).put("acme", ACME)
    path = tmp_path / "contacts.jsonl"
    path.write_text("\n".join([line("1"), line("2", tenant="default"), line("3", tenant="acme")]) + "\n")

    result = ktsync("enqueue", "--tenant", "acme", str(path), env=env)

    assert result.returncode == EXIT_REJECTED, result.stderr
    assert "enqueued 2, rejected 1" in result.stdout
    assert (
        "line 2: tenant: this producer enqueues for tenant 'acme', the message names 'default'"
        in result.stderr
    )
    assert [(m["crm_contact_id"], m["tenant"]) for m in queued(redis_client, settings, Lane.LIVE)] == [
        ("1", "acme"),
        ("3", "acme"),
    ]


@pytest.mark.parametrize(("tenant", "why"), [("ghost", "unknown tenant 'ghost'"), ("acme", "is disabled")])
def test_import_for_an_unknown_or_disabled_tenant_is_refused_up_front(
    env: dict[str, str], settings: Settings, redis_client: redis.Redis, tmp_path: Path, tenant: str, why: str
) -> None:
    registry = RedisTenantRegistry(redis_client, settings.deployment_prefix)
    registry.put("acme", ACME)
    registry.set_disabled("acme", True)
    path = tmp_path / "contacts.csv"
    path.write_text("id,email\n501,a@shop.example\n")

    result = ktsync("import", "--source", "hubspot", "--tenant", tenant, str(path), env=env)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert why in result.stderr
    assert "Traceback" not in result.stderr
    assert queued(redis_client, settings, Lane.BULK) == []


def test_import_with_a_tenant_carries_it_into_every_csv_row(
    env: dict[str, str], settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    RedisTenantRegistry(redis_client, settings.deployment_prefix).put("acme", ACME)
    path = tmp_path / "contacts.csv"
    path.write_text("id,email\n501,a@shop.example\n502,b@shop.example\n")

    result = ktsync("import", "--source", "hubspot", str(path), env={**env, "KTSYNC_TENANT": "acme"})

    assert result.returncode == 0, result.stderr
    assert [(m["crm_contact_id"], m["tenant"]) for m in queued(redis_client, settings, Lane.BULK)] == [
        ("501", "acme"),
        ("502", "acme"),
    ]
