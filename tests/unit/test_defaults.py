"""Every default is declared once, by the dataclasses of ``config/model.py``.

The shipped ``config/ktsync.yaml`` states each value explicitly, as documentation: these tests keep
it equal to the defaults it documents (a deliberate difference is named below), keep the schema from
inventing defaults of its own, and keep the worker's fallbacks on the same values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from ktsync.config.model import (
    BeatSettings,
    BulkSettings,
    DeadLetterSettings,
    FieldMapping,
    KlickTippSettings,
    RateSettings,
    ReconcileSettings,
    RetrySettings,
    Settings,
    SourceSettings,
    SyncSettings,
    WorkerSettings,
)
from ktsync.config.settings import DEFAULT_CONFIG_PATH, load_settings, settings_from_dict
from ktsync.worker.ratelimit.gate import CallContext
from ktsync.worker.retry import RetryPolicy

# Section of the file -> the dataclass whose defaults it documents.
SECTIONS: dict[str, type[Any]] = {
    "klicktipp": KlickTippSettings,
    "worker": WorkerSettings,
    "rate": RateSettings,
    "bulk": BulkSettings,
    "retry": RetrySettings,
    "deadletter": DeadLetterSettings,
    "sync": SyncSettings,
    "reconcile": ReconcileSettings,
    "beat": BeatSettings,
}
REDIS_KEYS = {"url": "redis_url", "key_prefix": "key_prefix", "broker_prefix": "broker_prefix"}

# Where the shipped file deliberately says something else than the defaults, and why.
DIFFERS = {
    "sources.default.fields": "an example mapping of HubSpot's standard properties (default: none)",
    "sources.default.tag_rules": "example tag rules for HubSpot's lifecycle stage, lead status, lists",
}
# Settings the file documents in a comment instead of a value, and why.
UNSTATED = {
    "worker.live_queue": "'' derives it from worker.queue; `queues: {live: ..., bulk: ...}` is commented",
    "worker.bulk_queue": "'' derives it from worker.queue; `queues: {live: ..., bulk: ...}` is commented",
}


def shipped_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    return document


def differences(actual: object, default: object, prefix: str) -> dict[str, tuple[object, object]]:
    """``path -> (actual, default)`` for each field of two dataclasses that differ."""
    return {
        f"{prefix}.{f.name}": (getattr(actual, f.name), getattr(default, f.name))
        for f in dataclasses.fields(default)  # type: ignore[arg-type]
        if getattr(actual, f.name) != getattr(default, f.name)
    }


def test_every_value_of_the_shipped_config_is_the_default_it_documents() -> None:
    # Given the shipped file, loaded without any environment
    settings = load_settings({}, DEFAULT_CONFIG_PATH)
    found: dict[str, tuple[object, object]] = {}
    # When each section is compared with its dataclass's defaults
    for section, cls in SECTIONS.items():
        found |= differences(getattr(settings, section), cls(), section)
    found |= {
        f"redis.{key}": (getattr(settings, attr), getattr(Settings, attr))
        for key, attr in REDIS_KEYS.items()
        if getattr(settings, attr) != getattr(Settings, attr)
    }
    # listid has no default (a worker refuses to run without one); the file leaves it unset.
    found |= differences(
        settings.source("default"), SourceSettings("default", listid=None), "sources.default"
    )
    # Then only the named differences remain
    assert sorted(found) == sorted(DIFFERS)


def test_the_shipped_config_states_every_setting() -> None:
    document = shipped_document()
    stated = {f"{section}.{key}" for section in SECTIONS for key in document[section]}
    settings = {f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    assert sorted(settings - stated) == sorted(UNSTATED)
    assert sorted(stated - settings) == []  # no key the dataclasses do not know
    assert set(document["redis"]) == set(REDIS_KEYS)


def test_what_a_file_leaves_out_takes_the_dataclass_default() -> None:
    # Given a file that names only what has no default
    document = {
        "version": 1,
        "sources": {"default": {"listid": 7, "fields": {"firstname": "fieldFirstName"}, "tags": {}}},
    }
    # When it is loaded
    settings = settings_from_dict(document, {})
    # Then every section is its dataclass's defaults, and so is the source
    for section, cls in SECTIONS.items():
        assert getattr(settings, section) == cls(), section
    assert (settings.redis_url, settings.key_prefix, settings.broker_prefix) == (
        Settings.redis_url,
        Settings.key_prefix,
        Settings.broker_prefix,
    )
    source = settings.source("default")
    assert dataclasses.replace(source, fields=()) == SourceSettings("default", listid=7)
    assert source.fields == (FieldMapping("firstname", "fieldFirstName", None, FieldMapping.type),)


def test_the_workers_fallbacks_are_the_settings_defaults() -> None:
    assert CallContext().patience == RateSettings.max_wait
    policy, retry = RetryPolicy(), RetrySettings()
    assert (policy.max_attempts, policy.min_backoff, policy.max_backoff, policy.max_pause) == (
        retry.max_attempts,
        retry.min_backoff,
        retry.max_backoff,
        RateSettings.max_pause,
    )
