"""Settings: the default config loads, environment overrides apply, and errors name the key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ktsync.config.settings import (
    DEFAULT_CONFIG_PATH,
    FIELD_TYPES,
    ConfigError,
    load_settings,
    settings_from_dict,
)
from ktsync.worker.sync.convert import FieldType


def default_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    return document


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(exc.value.problems)


def test_the_default_config_maps_hubspot_properties_and_the_crm_id_field() -> None:
    settings = load_settings({"KTSYNC_LISTID": "23"})

    hubspot = settings.source("hubspot")  # no entry of its own: uses "default"
    by_property = {m.property: m for m in hubspot.fields}
    assert hubspot.name == "hubspot"
    assert hubspot.listid == 23
    assert hubspot.crm_id_field == "CRM Contact ID"
    assert by_property["date_of_birth"].type == "date"
    assert by_property["lead_value"].field == "fieldLeadValue"
    assert by_property["website"].type == "url"
    assert [r.property for r in hubspot.tag_rules] == ["lifecyclestage", "hs_lead_status", "lists"]


def test_environment_overrides_redis_base_url_and_listid() -> None:
    env = {
        "KTSYNC_REDIS_URL": "redis://10.0.0.5:6380/2",
        "KLICKTIPP_BASE_URL": "http://127.0.0.1:9999",
        "KTSYNC_LISTID": "42",
    }
    settings = load_settings(env)
    assert settings.redis_url == "redis://10.0.0.5:6380/2"
    assert settings.klicktipp.base_url == "http://127.0.0.1:9999"
    assert all(s.listid == 42 for s in settings.sources.values())


def test_without_a_listid_the_worker_refuses_and_says_why() -> None:
    settings = load_settings({})
    [(key, reason)] = settings.worker_problems()
    assert key == "sources.default.listid"
    assert "never falls back" in reason


def test_a_bad_listid_variable_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings({"KTSYNC_LISTID": "default"})
    assert "KTSYNC_LISTID" in problems(exc)


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda d: d["worker"].update(pool="fibers"), "worker.pool", "Must be one of"),
        (lambda d: d["worker"].update(cores=2), "worker.cores", "unknown key"),
        (
            lambda d: d["sources"]["default"]["fields"].update(x={"field": "fieldX", "type": "money"}),
            "sources.default.fields.x.type",
            "Must be one of",
        ),
        (
            lambda d: d["sources"]["default"]["fields"].update(x={"field": "fieldX", "label": "X"}),
            "sources.default.fields.x.field",
            "exactly one",
        ),
        (
            lambda d: d["sources"]["default"]["fields"].update(x="FirstName"),
            "sources.default.fields.x.field",
            "field key",
        ),
        (
            lambda d: d["sources"]["default"]["tags"]["rules"].append(
                {"property": "p", "tag": "Foo {value}"}
            ),
            "sources.default.tags.rules.3.tag",
            "owned prefix",
        ),
        (
            lambda d: d["sources"]["default"]["tags"]["rules"].append(
                {"property": "p", "tag": "[CRM] fixed"}
            ),
            "sources.default.tags.rules.3.tag",
            "{value}",
        ),
        (
            lambda d: d["sources"].update(hubspot={"listid": "abc"}),
            "sources.hubspot.listid",
            "Not a valid integer",
        ),
        (lambda d: d["sources"].pop("default"), "sources", "'default'"),
        (lambda d: d.update(version=2), "version", "must be 1"),
        (lambda d: d["klicktipp"].update(base_url="ftp://x"), "klicktipp.base_url", "Not a valid URL"),
        (
            lambda d: d["worker"].update(visibility_timeout=30),
            "retry.max_broker_countdown",
            "below worker.visibility_timeout",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_reason(edit: Any, key: str, reason: str) -> None:
    document = default_document()
    edit(document)
    with pytest.raises(ConfigError) as exc:
        settings_from_dict(document, {})
    assert key in problems(exc), exc.value
    assert reason in problems(exc)[key]


def test_a_source_entry_inherits_what_it_does_not_name() -> None:
    document = default_document()
    document["sources"]["close"] = {"listid": 7}
    settings = settings_from_dict(document, {})
    assert settings.source("close").listid == 7
    assert settings.source("close").fields == settings.source("default").fields


def test_config_field_types_are_exactly_the_converter_types() -> None:
    assert set(FIELD_TYPES) == {t.value for t in FieldType}
