"""Tenants in the configuration: parsing, merging over the deployment's settings, the registry's view."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ktsync.config.registry import MemoryTenantRegistry, TenantRefused, WatchedTenants, tenant_view
from ktsync.config.secrets import Keyring, SecretError, new_key
from ktsync.config.settings import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    Settings,
    settings_from_dict,
    tenant_settings,
)
from ktsync.config.tenants import parse_tenant, sealed_document, shown_document, tenant_env
from ktsync.core.tenants import deployment_prefix_of, tenant_of, tenant_prefix
from ktsync.worker.schedule import MemorySchedule, Parked
from ktsync.worker.tenant_schedule import TenantSchedule

ACME: dict[str, Any] = {
    "credentials": {"KLICKTIPP_USERNAME": "acme", "KLICKTIPP_PASSWORD": {"env": "ACME_PW"}},
    "rate": {"per_second": 2},
    "sources": {"default": {"listid": 77}, "hubspot": {"deletion_policy": "delete"}},
}


def document(**tenants: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    raw["sources"]["default"]["listid"] = 5
    if tenants:
        raw["tenants"] = tenants
    return raw


def base(**tenants: Any) -> Settings:
    return settings_from_dict(document(**tenants), {})


def test_a_tenant_s_settings_are_the_deployment_s_with_its_sections_merged_over_them() -> None:
    settings = settings_from_dict(document(acme=ACME), {"KTSYNC_RATE_LIMIT": "9", "KTSYNC_LISTID": "6"})
    acme = tenant_settings(settings, settings.tenants["acme"], {"KTSYNC_LISTID": "6"})

    assert (acme.tenant, acme.key_prefix, acme.deployment_prefix) == ("acme", "ktsync@acme", "ktsync")
    assert acme.rate.per_second == 2  # its own; the rest of rate.* is the deployment's
    assert acme.rate.burst == settings.rate.burst
    assert acme.source("default").listid == 77  # the default tenant's KTSYNC_LISTID is not inherited
    assert acme.source("hubspot").listid == 77  # an entry inherits the tenant's default
    assert acme.source("hubspot").deletion_policy == "delete"
    assert acme.source("default").fields == settings.source("default").fields  # the mapping is inherited
    assert settings.rate.per_second == 9  # the default tenant keeps its overrides
    assert settings.source("default").listid == 6


def test_the_default_tenant_keeps_its_keys_and_no_tenant_pattern_reaches_another() -> None:
    assert tenant_prefix("ktsync", "default") == "ktsync"
    assert tenant_prefix("ktsync", "acme") == "ktsync@acme"
    assert deployment_prefix_of("ktsync@acme") == deployment_prefix_of("ktsync") == "ktsync"
    assert not "ktsync@acme2:contact:x".startswith(tenant_prefix("ktsync", "acme") + ":")
    assert tenant_of({"v": 1}) == "default"
    assert tenant_of({"tenant": "acme"}) == "acme"


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"credentials": {"KLICKTIPP_USERNAME": "a", "KLICKTIPP_PASSWORD": "plain"}},
         "tenants.acme.credentials.KLICKTIPP_PASSWORD", "never written in plain text"),
        ({"credentials": {"KLICKTIPP_USERNAME": "a"}}, "tenants.acme.credentials.KLICKTIPP_PASSWORD", "required"),
        ({"credentials": {**ACME["credentials"], "AWS_SECRET": "x"}}, "tenants.acme.credentials.AWS_SECRET",
         "not a per-account variable"),
        ({"rate": {"per_second": "fast"}}, "tenants.acme.rate.per_second", "Not a valid number"),
        ({"sources": {"default": {"listid": None}}}, "tenants.acme.sources.default.listid", "no opt-in process"),
        ({"sync": {"lock_lease": 5}}, "tenants.acme.sync.lock_lease", "unknown key"),
        ({"colour": "blue"}, "tenants.acme.colour", "unknown key"),
        ({"enabled": "yes"}, "tenants.acme.enabled", "true or false"),
    ],
)  # fmt: skip
def test_a_config_file_tenant_is_validated_with_the_key_named(
    change: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        base(acme={**ACME, **change})
    assert any(k == key and reason in r for k, r in raised.value.problems), raised.value.problems


def test_default_and_invalid_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="'default' is the top-level settings"):
        base(default=ACME)
    with pytest.raises(ConfigError, match="must be 1 to 64 characters"):
        base(**{"Acme!": ACME})


def test_secrets_are_sealed_for_storage_revealed_in_memory_and_never_shown() -> None:
    keyring = Keyring([new_key()])
    spec = parse_tenant("acme", {**ACME, "credentials": {"KLICKTIPP_USERNAME": "acme", "KLICKTIPP_PASSWORD": "s3cret"}},
                        origin="file", plain_secrets=True)  # fmt: skip
    stored = sealed_document(spec, keyring)
    token = stored["credentials"]["KLICKTIPP_PASSWORD"]["encrypted"]
    assert "s3cret" not in str(stored)
    assert keyring.decrypt(token, what="x") == "s3cret"
    again = parse_tenant("acme", stored, origin="registry")
    env = tenant_env({"KLICKTIPP_PASSWORD": "the-default-tenant-s", "PATH": "/bin"}, again, keyring)
    assert env == {"KLICKTIPP_USERNAME": "acme", "KLICKTIPP_PASSWORD": "s3cret", "PATH": "/bin"}
    assert "s3cret" not in str(shown_document(again))
    assert token not in str(shown_document(again))
    with pytest.raises(SecretError, match="KTSYNC_SECRET_KEY is not set"):
        sealed_document(spec, None)
    with pytest.raises(SecretError, match="different key"):
        tenant_env({}, again, Keyring([new_key()]))


def test_a_tenant_never_sees_another_account_s_variables() -> None:
    spec = parse_tenant("acme", ACME, origin="file")
    env = tenant_env(
        {"ACME_PW": "pw", "HUBSPOT_CLIENT_SECRET": "default's", "KLICKTIPP_DEVELOPER_KEY": "dev"}, spec, None
    )
    assert env == {
        "ACME_PW": "pw",
        "KLICKTIPP_USERNAME": "acme",
        "KLICKTIPP_PASSWORD": "pw",
        "KLICKTIPP_DEVELOPER_KEY": "dev",
    }
    with pytest.raises(SecretError, match="ACME_PW is not set"):
        tenant_env({}, spec, None)


def test_the_view_joins_the_config_file_and_the_registry_and_says_why_a_tenant_is_refused() -> None:
    settings = base(acme=ACME)
    registry = MemoryTenantRegistry()
    registry.put("beta", ACME)
    registry.put("broken", {"credentials": {}})
    registry.set_disabled("acme", True)
    view = tenant_view(settings.tenants, registry.snapshot())

    assert view.lookup("default") is None
    assert view.enabled() == ["default", "beta"]
    with pytest.raises(TenantRefused, match="tenant 'acme' is disabled"):
        view.lookup("acme")
    with pytest.raises(TenantRefused, match="unknown tenant 'gamma'"):
        view.lookup("gamma")
    with pytest.raises(TenantRefused, match="registered but invalid"):
        view.lookup("broken")


def test_a_registry_change_is_seen_after_the_interval_and_only_then() -> None:
    now = [0.0]
    registry = MemoryTenantRegistry()
    watched = WatchedTenants({}, registry, interval=2.0, clock=lambda: now[0])
    assert watched.current().enabled() == ["default"]
    registry.put("beta", ACME)
    now[0] = 1.0
    assert watched.current().enabled() == ["default"]
    now[0] = 2.5
    assert watched.current().enabled() == ["default", "beta"]


def test_a_tenant_s_view_of_the_shared_schedule_holds_only_its_entries() -> None:
    shared = MemorySchedule()
    mine = Parked("ktsync.sync_contact", ({"tenant": "acme", "crm_contact_id": "1"},), id="a")
    theirs = Parked("ktsync.sync_contact", ({"crm_contact_id": "1"},), id="b")
    shared.park(mine, 1.0)
    shared.park(theirs, 1.0)
    acme, default = TenantSchedule(shared, "acme"), TenantSchedule(shared, "default")
    assert [e.id for e in acme.due(10.0)] == ["a"]
    assert [e.id for e in default.due(10.0)] == ["b"]
    acme.remove(mine)
    assert [e.id for e in shared.due(10.0)] == ["b"]
