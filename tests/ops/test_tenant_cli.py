"""`ktsync tenant ...` and `ktsync check --tenant`: tenants managed at run time, on a real Redis.

Real parts: the ``ktsync`` command line as a subprocess, the test's own Redis (see tests/conftest.py)
and, for ``check``, the fake KlickTipp over loopback.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import yaml

from fake_klicktipp.testing import DEMO_PASSWORD, DEMO_USERNAME, SINGLE_OPT_IN_LIST_ID, RunningFake
from ktsync.config.registry import WATCH_INTERVAL, RedisTenantRegistry, WatchedTenants
from ktsync.config.secrets import new_key
from ktsync.config.settings import Settings
from ktsync.worker.schedule import Parked
from tests.ops.conftest import ktsync

pytestmark = pytest.mark.slow  # every test runs `ktsync` as a subprocess

PASSWORD = "acme-plain-password"


@pytest.fixture
def admin_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "KTSYNC_SECRET_KEY": new_key()}


def tenant_file(tmp_path: Path, name: str = "acme", **extra: Any) -> Path:
    document = {
        "credentials": {"KLICKTIPP_USERNAME": f"{name}-shop", "KLICKTIPP_PASSWORD": PASSWORD},
        "rate": {"per_second": 2},
        "sources": {"default": {"listid": 1234}},
        **extra,
    }
    path = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def rows(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(ok(ktsync("tenant", "list", "--json", env=env)))}


def test_add_show_list_disable_update_without_a_restart(
    tmp_path: Path, admin_env: dict[str, str], settings: Settings, redis_client: redis.Redis
) -> None:
    # Given a process watching the registry at the shipped interval (its clock in the test's hands)
    now = [0.0]
    watched = WatchedTenants(
        settings.tenants, RedisTenantRegistry(redis_client, settings.deployment_prefix), clock=lambda: now[0]
    )
    assert "acme" not in watched.current().specs

    # When a tenant is added with a plain password
    assert ok(ktsync("tenant", "add", "acme", "--file", str(tenant_file(tmp_path)), env=admin_env)) == (
        "added tenant acme\n"
    )

    # Then Redis holds it encrypted, and the process sees it within its interval
    stored = redis_client.hget(f"{settings.key_prefix}:tenants", "acme")
    assert stored is not None
    assert PASSWORD.encode() not in stored
    assert set(json.loads(stored)["credentials"]["KLICKTIPP_PASSWORD"]) == {"encrypted"}
    assert "acme" not in watched.current().specs  # not before its interval is up
    now[0] += WATCH_INTERVAL
    assert watched.current().lookup("acme") is not None
    # And show never prints the secret (nor its token)
    token = json.loads(stored)["credentials"]["KLICKTIPP_PASSWORD"]["encrypted"]
    for args in (("show", "acme"), ("show", "acme", "--json")):
        shown = ktsync("tenant", *args, env=admin_env)
        assert PASSWORD not in shown.stdout + shown.stderr
        assert token not in shown.stdout + shown.stderr
    assert json.loads(ok(ktsync("tenant", "show", "acme", "--json", env=admin_env)))["credentials"] == {
        "KLICKTIPP_USERNAME": "acme-shop",
        "KLICKTIPP_PASSWORD": "encrypted",
    }
    # And list names it with its budget
    listed = rows(admin_env)
    assert list(listed) == ["default", "acme"]
    assert (listed["acme"]["enabled"], listed["acme"]["origin"], listed["acme"]["per_second"]) == (
        True,
        "registry",
        2.0,
    )

    # When it is disabled, then updated
    ok(ktsync("tenant", "disable", "acme", env=admin_env))
    assert rows(admin_env)["acme"]["enabled"] is False
    update = tenant_file(tmp_path, rate={"per_second": 9})
    assert ok(ktsync("tenant", "update", "acme", "--file", str(update), env=admin_env)).startswith("updated")

    # Then the update keeps it disabled, with the new budget, seen by the process too
    assert (rows(admin_env)["acme"]["enabled"], rows(admin_env)["acme"]["per_second"]) == (False, 9.0)
    now[0] += WATCH_INTERVAL
    spec = watched.current().specs["acme"]
    assert (spec.enabled, spec.sections["rate"]) == (False, {"per_second": 9})
    assert PASSWORD.encode() not in (redis_client.hget(f"{settings.key_prefix}:tenants", "acme") or b"")
    ok(ktsync("tenant", "enable", "acme", env=admin_env))
    assert rows(admin_env)["acme"]["enabled"] is True


def test_errors_are_one_line_naming_the_key(tmp_path: Path, admin_env: dict[str, str]) -> None:
    wrong = tenant_file(tmp_path, sources={"default": {"listid": "many"}})
    assert "sources.default.listid" in one_line_error(
        ktsync("tenant", "add", "acme", "--file", str(wrong), env=admin_env)
    )

    no_key = {k: v for k, v in admin_env.items() if k != "KTSYNC_SECRET_KEY"}
    said = one_line_error(ktsync("tenant", "add", "acme", "--file", str(tenant_file(tmp_path)), env=no_key))
    assert "credentials.KLICKTIPP_PASSWORD" in said
    assert "KTSYNC_SECRET_KEY" in said

    assert "top-level" in one_line_error(
        ktsync("tenant", "add", "default", "--file", str(tenant_file(tmp_path)), env=admin_env)
    )
    assert "no tenant 'ghost'" in one_line_error(ktsync("tenant", "show", "ghost", env=admin_env))
    unconfirmed = ktsync("tenant", "remove", "ghost", "--purge", env=admin_env)  # no --yes, no terminal
    assert unconfirmed.returncode == 64, unconfirmed
    assert (
        unconfirmed.stderr.splitlines()[-1] == "Error: --purge deletes the tenant's data: confirm with --yes"
    )


def seed(client: redis.Redis, prefix: str) -> None:
    """Keys of acme, acme2 and default, and parked and deferred work of each, in the shared keys."""
    for key in (f"{prefix}@acme:state:hubspot:1", f"{prefix}@acme:dlq", f"{prefix}@acme:stats"):
        client.set(key, "acme")
    client.set(f"{prefix}@acme2:state:hubspot:1", "acme2")
    client.set(f"{prefix}:state:hubspot:1", "default")
    for tenant in ("acme", "acme2", None):
        message = {"crm_contact_id": "1", **({"tenant": tenant} if tenant else {})}
        entry = Parked("ktsync.sync_contact", (message,), id=f"task-{tenant}").to_json()
        client.zadd(f"{prefix}:schedule", {entry: 1.0})
        client.zadd(f"{prefix}:kq:shared-account:bulk", {entry: 1.0})
    own = Parked("ktsync.sync_contact", ({"tenant": "acme"},), id="own").to_json()
    client.zadd(f"{prefix}:kq:acme-account:live", {own: 1.0})
    client.sadd(f"{prefix}:kq:keys", "shared-account:bulk", "acme-account:live")
    client.hset(f"{prefix}:kq:clock", mapping={"shared-account:bulk": 1, "acme-account:live": 1})


def ids(client: redis.Redis, key: str) -> list[str]:
    return sorted(Parked.from_json(member).id for member in cast(list[bytes], client.zrange(key, 0, -1)))


def test_remove_purge_deletes_only_the_tenant_s_traces(
    tmp_path: Path, admin_env: dict[str, str], settings: Settings, redis_client: redis.Redis
) -> None:
    # Given tenants acme and acme2, with keys of their own and of default, and work in the shared keys
    p = settings.key_prefix
    for name in ("acme", "acme2"):
        ok(ktsync("tenant", "add", name, "--file", str(tenant_file(tmp_path, name)), env=admin_env))
    seed(redis_client, p)

    # When acme is removed with --purge
    said = ok(ktsync("tenant", "remove", "acme", "--purge", "--yes", env=admin_env))

    # Then its keys, parked retries and deferred tasks are gone, and it says how many
    assert said == "removed tenant acme: purged 3 key(s), 1 parked retry, 2 deferred task(s)\n"
    assert list(redis_client.scan_iter(match=f"{p}@acme:*")) == []
    assert "acme" not in rows(admin_env)
    # And acme2's and default's are all still there
    assert redis_client.get(f"{p}@acme2:state:hubspot:1") == b"acme2"
    assert redis_client.get(f"{p}:state:hubspot:1") == b"default"
    assert ids(redis_client, f"{p}:schedule") == ["task-None", "task-acme2"]
    assert ids(redis_client, f"{p}:kq:shared-account:bulk") == ["task-None", "task-acme2"]
    # And acme's own account's key queue is forgotten with its clock; the shared one is kept
    assert redis_client.smembers(f"{p}:kq:keys") == {b"shared-account:bulk"}
    assert redis_client.hkeys(f"{p}:kq:clock") == [b"shared-account:bulk"]
    assert rows(admin_env)["acme2"]["enabled"] is True


@pytest.fixture
def on_fake(config_path: Path, fake_server: RunningFake) -> Path:
    document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    document["klicktipp"]["base_url"] = fake_server.base_url
    config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config_path


def test_check_tenant_checks_the_tenant_s_own_account(
    tmp_path: Path, on_fake: Path, admin_env: dict[str, str], settings: Settings
) -> None:
    # Given a deployment whose own credentials KlickTipp refuses, and a tenant with the account's
    env = {**admin_env, "KLICKTIPP_USERNAME": "someone-else", "KLICKTIPP_PASSWORD": "wrong"}
    document = {
        "credentials": {"KLICKTIPP_USERNAME": DEMO_USERNAME, "KLICKTIPP_PASSWORD": DEMO_PASSWORD},
        "sources": {"default": {"listid": SINGLE_OPT_IN_LIST_ID}},
    }
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    ok(ktsync("tenant", "add", "demo", "--file", str(path), env=env))

    # When the tenant is checked
    result = ktsync("check", "--tenant", "demo", env=env)

    # Then its credentials and settings fit, and the report names the tenant
    out = ok(result).splitlines()
    assert out[0] == f"info  tenant: demo (from registry, keys under {settings.key_prefix}@demo:), enabled"
    assert out[1].startswith("ok    credentials: KlickTipp at")
    assert out[-1] == "everything fits"
    assert DEMO_PASSWORD not in result.stdout + result.stderr
    # And the deployment's own (wrong) credentials would not have
    assert "KlickTipp refuses them" in one_line_error(ktsync("check", env=env))
    # And an unknown tenant is one line
    assert "ghost: unknown" in one_line_error(ktsync("check", "--tenant", "ghost", env=env))
