"""Tenants end to end: one worker serves several KlickTipp accounts, each within its own keys.

Real Redis, a real Celery worker, real HTTP to the fake KlickTipp. The tenants come from the config
file (``tenants:``) and from the registry, changed while the worker runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from celery import Celery

from fake_klicktipp.testing import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DOUBLE_OPT_IN_LIST_ID,
    SINGLE_OPT_IN_LIST_ID,
    FakeControl,
    account_entry,
    account_password,
)
from ktsync.config.registry import WATCH_INTERVAL, RedisTenantRegistry
from ktsync.config.settings import Settings, load_settings
from ktsync.core import series
from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.core.lanes import Lane
from ktsync.core.summary import summary
from ktsync.core.tenants import tenant_prefix
from ktsync.producers import Producer
from tests.integration.sync_helpers import Outcomes, Stores, upsert, wait_for

pytestmark = pytest.mark.integration

ACME_PASSWORD_ENV = "ACME_KLICKTIPP_PASSWORD"
ACME = "acme"  # the tenant, and its account in the fake


@pytest.fixture
def env(config_file: Callable[..., Path], redis_client: Any, fake: FakeControl) -> dict[str, str]:
    """The default tenant (the fake's account ``demo``) and tenant ``acme`` (the fake's account
    ``acme``, its password referenced by a variable's name, its own opt-in process)."""
    fake.add_accounts([account_entry(ACME)])
    path = config_file()
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["tenants"] = {
        ACME: {
            "credentials": {"KLICKTIPP_USERNAME": ACME, "KLICKTIPP_PASSWORD": {"env": ACME_PASSWORD_ENV}},
            "sources": {"default": {"listid": DOUBLE_OPT_IN_LIST_ID}},
            "rate": {"per_second": 1000, "burst": 1000, "max_in_flight": 0},
        }
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return {
        "KTSYNC_CONFIG": str(path),
        "KLICKTIPP_USERNAME": DEMO_USERNAME,
        "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
        ACME_PASSWORD_ENV: account_password(ACME),
        "WRONG_PASSWORD": "not-the-password",
    }


def of(tenant: str, message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "tenant": tenant}


def tenant_view(client: redis.Redis, settings: Settings, tenant: str) -> tuple[Outcomes, Stores]:
    """The outcome counters and stores of ``tenant``, under its key prefix."""
    scoped = replace(settings, key_prefix=tenant_prefix(settings.key_prefix, tenant))
    return Outcomes(client, scoped), Stores(client, scoped)


def publish(app: Celery, settings: Settings, message: Mapping[str, Any], replay_of: str = "") -> None:
    """As a producer ktsync did not write: straight to the broker, no validation on the way."""
    task = TASK_NAMES[MessageType(message["type"])]
    kwargs = {"replay_of": replay_of} if replay_of else {}
    app.send_task(task, args=[dict(message)], kwargs=kwargs, queue=settings.worker.lane_queue(Lane.LIVE))


def test_each_tenant_syncs_with_its_own_settings_into_its_own_keys(
    worker: Celery,
    producer: Producer,
    settings: Settings,
    redis_client: redis.Redis,
    fake: FakeControl,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    acme_outcomes, acme = tenant_view(redis_client, settings, "acme")
    producer.enqueue(upsert("501", "alex@shop.example"))
    producer.enqueue(of("acme", upsert("501", "kim@acme.example")))

    assert outcomes.wait(1)["synced"] == 1
    assert acme_outcomes.wait(1)["synced"] == 1
    # The same CRM contact id in two tenants: two contacts, each in its own tenant's keys...
    default_state, acme_state = stores.state.get("hubspot", "501"), acme.state.get("hubspot", "501")
    assert default_state is not None
    assert acme_state is not None
    assert redis_client.keys(f"{settings.key_prefix}@acme:contact:hubspot:501")
    # ... and in its own KlickTipp account, with its own credentials and opt-in process.
    emails = {who: {c["email"] for c in fake.state(who)["contacts"]} for who in (DEMO_USERNAME, ACME)}
    assert "alex@shop.example" in emails[DEMO_USERNAME] - emails[ACME]
    assert "kim@acme.example" in emails[ACME] - emails[DEMO_USERNAME]
    assert created_listids(fake, ACME) == [str(DOUBLE_OPT_IN_LIST_ID)]
    assert created_listids(fake, DEMO_USERNAME) == [str(SINGLE_OPT_IN_LIST_ID)]
    # And each task is in its own tenant's hour of history (the console's charts), in its lane
    prefixes = [settings.key_prefix, tenant_prefix(settings.key_prefix, ACME)]
    for lanes in series.read_many(redis_client, prefixes, time.time()).values():
        live = lanes[Lane.LIVE]
        assert (sum(p.done for p in live), sum(p.latency_count for p in live)) == (1, 1)
        assert sum(p.calls for p in live) >= 1
        assert sum(p.done for p in lanes[Lane.BULK]) == 0


def created_listids(fake: FakeControl, account: str) -> list[str]:
    return [
        str(r["body"]["listid"])
        for r in fake.requests(account=account)
        if r["operation"] == "api.subscriber.create"
    ]


def test_a_message_of_an_unknown_tenant_is_dead_lettered_as_config_with_what_arrived(
    worker: Celery, settings: Settings, outcomes: Outcomes, stores: Stores
) -> None:
    message = of("nobody", upsert("502", "lee@shop.example"))
    publish(worker, settings, message)

    assert outcomes.wait(1)["dead_lettered"] == 1
    [letter] = stores.dead_letters.list()
    assert letter.reason == "config"
    assert letter.message == message
    assert letter.error["errors"] == [{"field": "tenant", "reason": letter.error["errors"][0]["reason"]}]
    assert "unknown tenant 'nobody'" in letter.error["errors"][0]["reason"]


def test_a_tenant_added_to_the_registry_takes_work_within_seconds_and_a_disabled_one_none(
    worker: Celery,
    settings: Settings,
    redis_client: redis.Redis,
    outcomes: Outcomes,
    stores: Stores,
) -> None:
    registry = RedisTenantRegistry(redis_client, settings.key_prefix)
    document = {
        "credentials": {
            "KLICKTIPP_USERNAME": ACME,  # beta shares acme's account (and budget)
            "KLICKTIPP_PASSWORD": {"env": ACME_PASSWORD_ENV},
        },
        "sources": {"default": {"listid": DOUBLE_OPT_IN_LIST_ID}},
        "rate": {"per_second": 1000, "burst": 1000, "max_in_flight": 0},
    }
    publish(worker, settings, of("beta", upsert("503", "pat@beta.example")))  # not yet registered
    assert outcomes.wait(1)["dead_lettered"] == 1

    registry.put("beta", document)
    time.sleep(WATCH_INTERVAL + 0.5)  # the worker asks the registry's version this often
    beta, _ = tenant_view(redis_client, settings, "beta")
    [letter] = stores.dead_letters.list()
    publish(worker, settings, letter.message, replay_of=letter.id)  # as `ktsync dlq replay` does
    assert beta.wait(1, timeout=20)["synced"] == 1  # the worker re-read the registry (every 2 s)
    wait_for(lambda: not stores.dead_letters.list())  # the replayed letter is gone, from default's

    registry.set_disabled("beta", True)
    time.sleep(WATCH_INTERVAL + 0.5)  # the worker asks the registry's version this often
    publish(worker, settings, of("beta", upsert("504", "sam@beta.example")))
    assert outcomes.wait(2)["dead_lettered"] == 2  # the first one, and this one
    reasons = [letter.error["errors"][0]["reason"] for letter in stores.dead_letters.list()]
    assert any("tenant 'beta' is disabled" in reason for reason in reasons), reasons
    assert beta.snapshot()["synced"] == 1


def test_flower_shows_the_tenant_first() -> None:
    message = of("acme", upsert("501", "kim@acme.example"))
    assert summary(message) == "acme contact.upsert hubspot/501"
    assert summary(upsert("501", "kim@acme.example")) == "contact.upsert hubspot/501"


def test_the_config_file_tenant_is_validated_with_the_key_named(tmp_path: Path, env: dict[str, str]) -> None:
    document = yaml.safe_load(Path(env["KTSYNC_CONFIG"]).read_text(encoding="utf-8"))
    document["tenants"]["acme"]["credentials"]["KLICKTIPP_PASSWORD"] = "plain-secret"
    document["tenants"]["acme"]["rate"]["per_second"] = "fast"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"tenants\.acme\.credentials\.KLICKTIPP_PASSWORD: a secret is never"
    ):
        load_settings({**env, "KTSYNC_CONFIG": str(path)})


def test_a_tenant_whose_credentials_are_refused_dead_letters_as_auth_and_pauses_no_worker(
    worker: Celery,
    producer: Producer,
    settings: Settings,
    redis_client: redis.Redis,
    outcomes: Outcomes,
) -> None:
    registry = RedisTenantRegistry(redis_client, settings.key_prefix)
    registry.put("wrong", {
        "credentials": {"KLICKTIPP_USERNAME": DEMO_USERNAME, "KLICKTIPP_PASSWORD": {"env": "WRONG_PASSWORD"}},
        "sources": {"default": {"listid": DOUBLE_OPT_IN_LIST_ID}},
    })  # fmt: skip
    wrong_outcomes, wrong = tenant_view(redis_client, settings, "wrong")
    time.sleep(WATCH_INTERVAL + 0.5)
    publish(worker, settings, of("wrong", upsert("601", "max@wrong.example")))
    assert wrong_outcomes.wait(1, timeout=20)["dead_lettered"] == 1
    [letter] = wrong.dead_letters.list()
    assert letter.reason == "auth"
    producer.enqueue(upsert("602", "ana@shop.example"))  # the default tenant's work goes on
    assert outcomes.wait(1)["synced"] == 1
