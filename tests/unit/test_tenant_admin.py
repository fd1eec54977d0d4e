"""Managing tenants in the registry: what is refused, what is stored, what is shown (in-memory twin)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from ktsync.config.model import ConfigError
from ktsync.config.registry import MemoryTenantRegistry, WatchedTenants
from ktsync.config.secrets import Keyring, SecretError, new_key
from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, settings_from_dict
from ktsync.config.tenants import tenant_env
from ktsync.tenant_admin import (
    TenantAdminError,
    add_tenant,
    list_tenants,
    read_document,
    remove_tenant,
    set_enabled,
    show_tenant,
    tenant_pattern,
    update_tenant,
)

PASSWORD = "acme-secret-password"


def base_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["sources"]["default"]["listid"] = 23
    return document


@pytest.fixture
def settings() -> Settings:
    return settings_from_dict(base_document(), {}, origin="ktsync.yaml")


@pytest.fixture
def registry() -> MemoryTenantRegistry:
    return MemoryTenantRegistry()


@pytest.fixture
def env() -> dict[str, str]:
    return {"KTSYNC_SECRET_KEY": new_key()}


def acme(**extra: Any) -> dict[str, Any]:
    return {
        "credentials": {"KLICKTIPP_USERNAME": "acme-shop", "KLICKTIPP_PASSWORD": PASSWORD},
        "rate": {"per_second": 2},
        "sources": {"default": {"listid": 1234}},
        **extra,
    }


def test_an_added_tenant_is_stored_with_its_secret_encrypted(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    # When a tenant is added with a plain password
    add_tenant(settings, registry, "acme", acme(), env)

    # Then the stored document holds no plain secret, and the tenant's environment reveals it
    stored = registry.snapshot().documents["acme"]
    assert PASSWORD not in json.dumps(stored)
    assert set(stored["credentials"]["KLICKTIPP_PASSWORD"]) == {"encrypted"}
    spec = WatchedTenants({}, registry).current().lookup("acme")
    assert spec is not None
    revealed = tenant_env({}, spec, Keyring.from_env(env))
    assert revealed["KLICKTIPP_PASSWORD"] == PASSWORD
    assert revealed["KLICKTIPP_USERNAME"] == "acme-shop"


def test_a_plain_secret_without_a_key_names_the_key_and_the_fix(
    settings: Settings, registry: MemoryTenantRegistry
) -> None:
    with pytest.raises(SecretError) as raised:
        add_tenant(settings, registry, "acme", acme(), {})

    assert "credentials.KLICKTIPP_PASSWORD" in str(raised.value)
    assert "KTSYNC_SECRET_KEY" in str(raised.value)
    assert "ktsync tenant key" in str(raised.value)
    assert registry.snapshot().documents == {}


def test_a_secret_referenced_by_variable_needs_no_key(
    settings: Settings, registry: MemoryTenantRegistry
) -> None:
    document = acme()
    document["credentials"]["KLICKTIPP_PASSWORD"] = {"env": "ACME_PASSWORD"}

    add_tenant(settings, registry, "acme", document, {})

    assert registry.snapshot().documents["acme"]["credentials"]["KLICKTIPP_PASSWORD"] == {
        "env": "ACME_PASSWORD"
    }


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sources": {"default": {"listid": "many"}}}, "sources.default.listid"),
        ({"rate": {"per_second": -1}}, "rate.per_second"),
        ({"sync": {"max_attempts": 3}}, "sync.max_attempts"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_document_is_refused_naming_the_key_as_in_the_file(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str], change: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        add_tenant(settings, registry, "acme", acme(**change), env)

    assert key in [k for k, _ in raised.value.problems], raised.value.problems
    assert registry.snapshot().documents == {}


@pytest.mark.parametrize(
    ("name", "says"),
    [("default", "top-level settings"), ("Acme!", "must be 1 to 64"), ("beta", "defined in ktsync.yaml")],
)
def test_names_that_are_not_the_registry_s_are_refused(
    registry: MemoryTenantRegistry, env: dict[str, str], name: str, says: str
) -> None:
    # Given a config file that defines tenant beta itself
    document = base_document()
    beta = acme()
    beta["credentials"]["KLICKTIPP_PASSWORD"] = {"env": "BETA_PASSWORD"}
    document["tenants"] = {"beta": beta}
    settings = settings_from_dict(document, {}, origin="ktsync.yaml")

    with pytest.raises(TenantAdminError, match=says):
        add_tenant(settings, registry, name, acme(), env)
    if name == "beta":
        with pytest.raises(TenantAdminError, match="change it there"):
            remove_tenant(settings, registry, name, purge=False)


def test_add_refuses_an_existing_name_and_update_a_missing_one(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    add_tenant(settings, registry, "acme", acme(), env)

    with pytest.raises(TenantAdminError, match="exists already"):
        add_tenant(settings, registry, "acme", acme(), env)
    with pytest.raises(TenantAdminError, match="no tenant 'other'"):
        update_tenant(settings, registry, "other", acme(), env)


def test_update_replaces_the_document_and_reaches_a_watcher(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    # Given a running process that knows acme at 2 calls a second
    add_tenant(settings, registry, "acme", acme(), env)
    clock = [0.0]
    watched = WatchedTenants({}, registry, interval=2.0, clock=lambda: clock[0])
    first = watched.current().lookup("acme")
    assert first is not None
    assert first.sections["rate"] == {"per_second": 2}

    # When the operator updates it
    update_tenant(settings, registry, "acme", acme(rate={"per_second": 7}), env)

    # Then the process sees the change once its interval has passed
    clock[0] = 2.0
    second = watched.current().lookup("acme")
    assert second is not None
    assert second.sections["rate"] == {"per_second": 7}
    assert PASSWORD not in json.dumps(registry.snapshot().documents["acme"])


def test_update_without_a_document_encrypts_again_with_the_new_first_key(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    # Given a tenant encrypted with the old key, then a new key put first
    add_tenant(settings, registry, "acme", acme(), env)
    old = env["KTSYNC_SECRET_KEY"]
    rotated = {"KTSYNC_SECRET_KEY": f"{new_key()},{old}"}

    # When it is updated without a file
    update_tenant(settings, registry, "acme", None, rotated)

    # Then the new key alone decrypts it
    only_new = {"KTSYNC_SECRET_KEY": rotated["KTSYNC_SECRET_KEY"].split(",")[0]}
    spec = WatchedTenants({}, registry).current().lookup("acme")
    assert spec is not None
    assert tenant_env({}, spec, Keyring.from_env(only_new))["KLICKTIPP_PASSWORD"] == PASSWORD


def test_show_never_shows_a_secret(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    add_tenant(settings, registry, "acme", acme(), env)
    stored = registry.snapshot().documents["acme"]["credentials"]["KLICKTIPP_PASSWORD"]["encrypted"]

    shown = show_tenant(settings, registry, "acme")

    text = json.dumps(shown)
    assert PASSWORD not in text
    assert stored not in text
    assert shown["credentials"]["KLICKTIPP_PASSWORD"] == "encrypted"
    assert shown["credentials"]["KLICKTIPP_USERNAME"] == "acme-shop"


def test_list_shows_default_config_and_registry_tenants_with_their_state(
    registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    # Given a config-file tenant beta and a registry tenant acme, beta disabled
    document = base_document()
    beta = copy.deepcopy(acme(rate={"per_second": 3}))
    beta["credentials"]["KLICKTIPP_PASSWORD"] = {"env": "BETA_PASSWORD"}
    document["tenants"] = {"beta": beta}
    settings = settings_from_dict(document, {}, origin="ktsync.yaml")
    add_tenant(settings, registry, "acme", acme(), env)
    set_enabled(settings, registry, "beta", False)

    rows = {row.name: row for row in list_tenants(settings, registry)}

    assert list(rows) == ["default", "acme", "beta"]
    assert (rows["acme"].enabled, rows["acme"].origin, rows["acme"].per_second) == (True, "registry", 2.0)
    assert (rows["beta"].enabled, rows["beta"].origin, rows["beta"].per_second) == (False, "ktsync.yaml", 3.0)
    set_enabled(settings, registry, "beta", True)
    assert all(row.enabled for row in list_tenants(settings, registry))


def test_disabling_an_unknown_tenant_is_refused(settings: Settings, registry: MemoryTenantRegistry) -> None:
    with pytest.raises(TenantAdminError, match="no tenant 'ghost'"):
        set_enabled(settings, registry, "ghost", False)


def test_remove_forgets_the_tenant_and_an_unknown_one_is_an_error(
    settings: Settings, registry: MemoryTenantRegistry, env: dict[str, str]
) -> None:
    add_tenant(settings, registry, "acme", acme(), env)
    set_enabled(settings, registry, "acme", False)

    assert remove_tenant(settings, registry, "acme", purge=False) is None

    assert registry.snapshot().documents == {}
    assert registry.snapshot().disabled == {}
    with pytest.raises(TenantAdminError, match="no tenant 'acme'"):
        remove_tenant(settings, registry, "acme", purge=False)


def test_the_purge_pattern_is_exactly_the_tenant_s_own_keys() -> None:
    assert tenant_pattern("ktsync", "acme") == "ktsync@acme:*"
    assert tenant_pattern("ns[1]", "acme") == "ns\\[1\\]@acme:*"
    with pytest.raises(TenantAdminError):
        tenant_pattern("ktsync", "default")


def test_a_file_that_is_neither_yaml_nor_json_names_its_line() -> None:
    with pytest.raises(ConfigError) as raised:
        read_document("credentials: [unclosed\n", "acme.yaml")

    assert raised.value.problems[0][0].startswith("line ")
    assert read_document('{"enabled": false}', "acme.json") == {"enabled": False}
