"""Operator commands stay within one tenant: dead letters, replays, contacts, review, status, metrics.

A real Redis and the real ``ktsync`` command line; two tenants (``default`` and ``acme``, from the config
file's ``tenants:`` section), each with keys of its own written through the workers' own classes.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ktsync.config.settings import Settings, load_settings
from ktsync.core.lanes import Lane
from ktsync.core.tenants import tenant_prefix
from ktsync.metrics import RedisCollector
from ktsync.metrics_tenants import PER_TENANT_ENV
from ktsync.worker.deadletter import DeadLetter, RedisDeadLetterStore
from ktsync.worker.review import RedisReviewList
from ktsync.worker.runtime import account_key
from ktsync.worker.state import ContactState, RedisStateStore
from ktsync.worker.stats import RedisStats
from tests.ops.conftest import ktsync
from tests.ops.seed import upsert

pytestmark = pytest.mark.slow  # real CLI commands against a real Redis

ACME_USER = "acme@klicktipp.example"


@pytest.fixture
def env(config_path: Path, env: dict[str, str]) -> dict[str, str]:
    """The ops config with tenant ``acme`` added (its password named by a variable)."""
    document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    document["tenants"] = {
        "acme": {"credentials": {"KLICKTIPP_USERNAME": ACME_USER, "KLICKTIPP_PASSWORD": {"env": "ACME_PW"}}}
    }
    path = config_path.with_name("tenants.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return {**env, "KTSYNC_CONFIG": str(path), "ACME_PW": "not-used"}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


def letter(letter_id: str, crm_id: str, tenant: str | None) -> DeadLetter:
    message = {**upsert(crm_id, f"{crm_id}@shop.example"), **({"tenant": tenant} if tenant else {})}
    now = time.time()
    return DeadLetter(id=letter_id, message=message, task="ktsync.sync_contact", reason="validation",
                      error={"message": "refused", "error": 8}, attempts=1, first_failed_at=now,
                      last_failed_at=now, source="hubspot")  # fmt: skip


@pytest.fixture
def seeded(redis_client: redis.Redis, settings: Settings) -> dict[str, str]:
    """One dead letter, review entry and outcome per tenant; the prefixes they live under."""
    prefixes = {"default": settings.key_prefix, "acme": tenant_prefix(settings.key_prefix, "acme")}
    RedisDeadLetterStore(redis_client, prefixes["default"]).add(letter("dl-home", "crm-home", None))
    RedisDeadLetterStore(redis_client, prefixes["acme"]).add(letter("dl-acme", "crm-acme", "acme"))
    RedisReviewList(redis_client, prefixes["default"]).add(
        "rv-home", {"source": "hubspot", "crm_contact_id": "1"}
    )
    RedisReviewList(redis_client, prefixes["acme"]).add(
        "rv-acme", {"source": "hubspot", "crm_contact_id": "2"}
    )
    RedisStats(redis_client, prefixes["default"]).incr("synced", 3)
    RedisStats(redis_client, prefixes["acme"]).incr("synced", 5)
    return prefixes


def ids(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def test_dead_letters_are_listed_and_shown_per_tenant(seeded: dict[str, str], env: dict[str, str]) -> None:
    # Given a dead letter in each tenant
    # When the operator lists each tenant's
    home = ktsync("dlq", "list", env=env)
    acme = ktsync("dlq", "list", "--tenant", "acme", env=env)
    by_env = ktsync("dlq", "list", env={**env, "KTSYNC_TENANT": "acme"})

    # Then each shows only its own
    assert home.returncode == 0, home.stderr
    assert ids(home.stdout) == ["dl-home"]
    assert ids(acme.stdout) == ["dl-acme"]
    assert ids(by_env.stdout) == ["dl-acme"]
    assert ktsync("dlq", "show", "dl-acme", env=env).returncode != 0
    shown = ktsync("dlq", "show", "dl-acme", "--tenant", "acme", "--message", env=env)
    assert json.loads(shown.stdout)["tenant"] == "acme"


def test_an_unknown_tenant_is_refused_with_the_known_ones(
    seeded: dict[str, str], env: dict[str, str]
) -> None:
    result = ktsync("dlq", "list", "--tenant", "nobody", env=env)

    assert result.returncode != 0
    assert "unknown tenant 'nobody'" in result.stderr
    assert "default, acme" in result.stderr
    assert "Traceback" not in result.stderr


def broker_messages(client: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The messages waiting in the bulk lane's queue (kombu's envelope, base64 JSON body)."""
    raw = client.lrange(settings.broker_prefix + settings.worker.lane_queue(Lane.BULK), 0, -1)
    bodies = [json.loads(base64.b64decode(json.loads(item)["body"])) for item in raw]  # type: ignore[union-attr]
    return [args[0] for args, _kwargs, _embed in bodies]


def test_a_replay_republishes_the_tenants_letters_with_their_tenant(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis, settings: Settings
) -> None:
    # When the operator replays acme's dead letters
    result = ktsync("dlq", "replay", "--all", "--tenant", "acme", env=env)

    # Then only acme's letter went out again, naming its tenant, and the default's stays untouched
    assert result.returncode == 0, result.stderr
    assert "1 replayed" in result.stdout
    messages = broker_messages(redis_client, settings)
    assert [(m["crm_contact_id"], m.get("tenant")) for m in messages] == [("crm-acme", "acme")]
    home = RedisDeadLetterStore(redis_client, seeded["default"]).get("dl-home")
    assert home is not None
    assert home.replays == 0


def test_purge_removes_only_within_its_tenant(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis
) -> None:
    result = ktsync("dlq", "purge", "--all", "--tenant", "acme", env=env)

    assert result.returncode == 0, result.stderr
    assert RedisDeadLetterStore(redis_client, seeded["acme"]).count() == 0
    assert RedisDeadLetterStore(redis_client, seeded["default"]).count() == 1


def test_contact_show_finds_a_contact_only_in_its_tenant(seeded: dict[str, str], env: dict[str, str]) -> None:
    acme = ktsync("contact", "show", "hubspot/crm-acme", "--tenant", "acme", "--json", env=env)
    home = ktsync("contact", "show", "hubspot/crm-acme", env=env)

    assert acme.returncode == 0, acme.stderr
    assert [d["id"] for d in json.loads(acme.stdout)["dead_letters"]] == ["dl-acme"]
    assert home.returncode != 0
    assert "knows no contact" in home.stderr


def test_the_review_list_is_per_tenant(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis
) -> None:
    home = ktsync("review", "list", "--json", env=env)
    acme = ktsync("review", "list", "--json", "--tenant", "acme", env=env)
    assert [i["id"] for i in json.loads(home.stdout)] == ["rv-home"]
    assert [i["id"] for i in json.loads(acme.stdout)] == ["rv-acme"]

    assert ktsync("review", "done", "rv-acme", env=env).returncode != 0  # not the default's
    assert ktsync("review", "done", "rv-acme", "--tenant", "acme", env=env).returncode == 0
    assert RedisReviewList(redis_client, seeded["default"]).list()[0]["id"] == "rv-home"


def test_status_shows_the_tenant_and_a_line_per_tenant(seeded: dict[str, str], env: dict[str, str]) -> None:
    home = ktsync("status", "--ping-timeout", "0", env=env)
    scoped = ktsync("status", "--json", "--ping-timeout", "0", "--tenant", "acme", env=env)
    assert scoped.returncode == 0, scoped.stderr
    acme = json.loads(scoped.stdout)

    assert home.returncode == 0, home.stderr
    assert "tenants: 2" in home.stdout
    assert "tenant default: enabled, dead letters 1, deferred 0" in home.stdout
    assert "tenant acme: enabled, dead letters 1, deferred 0" in home.stdout
    assert acme["tenant"] == "acme"
    assert acme["outcomes"] == {"synced": 5}
    assert acme["limiter"]["account"] == account_key({"KLICKTIPP_USERNAME": ACME_USER})


def samples(
    settings: Settings, env: dict[str, str], client: redis.Redis
) -> dict[tuple[str, frozenset[Any]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(client, settings, account_key(env), env=env))
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_label_every_per_tenant_family_with_its_tenant(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis, settings: Settings
) -> None:
    found = samples(settings, env, redis_client)

    synced = {
        dict(labels)["tenant"]: v for (name, labels), v in found.items() if name == "ktsync_outcomes_total"
    }
    assert synced == {"default": 3, "acme": 5}
    letters = [dict(labels) for (name, labels), _ in found.items() if name == "ktsync_dead_letters"]
    assert sorted(entry["tenant"] for entry in letters) == ["acme", "default"]
    assert ("ktsync_limiter_tokens", frozenset({("tenant", "acme")})) in found
    # the deployment's queues are every tenant's: no tenant label
    assert all("tenant" not in dict(labels) for (name, labels) in found if name.startswith("ktsync_queue_"))


def test_metrics_sum_over_tenants_with_the_switch_off(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis, settings: Settings
) -> None:
    found = samples(settings, {**env, PER_TENANT_ENV: "0"}, redis_client)

    assert all("tenant" not in dict(labels) for (_name, labels) in found)
    assert found[("ktsync_outcomes_total", frozenset({("outcome", "synced")}))] == 8
    assert found[("ktsync_dead_letters", frozenset({("reason", "validation"), ("code", "8")}))] == 2


def test_resync_and_forget_take_the_tenant(
    seeded: dict[str, str], env: dict[str, str], redis_client: redis.Redis, settings: Settings
) -> None:
    # Given one known contact in each tenant
    RedisStateStore(redis_client, seeded["default"]).put(
        ContactState("hubspot", "crm-home", klicktipp_id="1")
    )
    RedisStateStore(redis_client, seeded["acme"]).put(ContactState("hubspot", "crm-acme", klicktipp_id="2"))

    # When acme's contacts are re-checked, and a contact of an unknown tenant is to be forgotten
    resync = ktsync("resync", "-s", "hubspot", "--from", "klicktipp", "--tenant", "acme", env=env)
    forget = ktsync("contact", "forget", "hubspot/crm-acme", "--yes", "--tenant", "nobody", env=env)

    # Then only acme's contact is re-checked, as acme's; the unknown tenant is refused
    assert resync.returncode == 0, resync.stderr
    queued = [(m["klicktipp_id"], m.get("tenant")) for m in broker_messages(redis_client, settings)]
    assert queued == [("2", "acme")]
    assert forget.returncode != 0
    assert "unknown tenant 'nobody'" in forget.stderr
