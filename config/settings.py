"""Load, validate and freeze ktsync's settings: the YAML file plus environment overrides.

Settings are read once at an entry point (CLI command, worker start) and passed down; nothing reads
the environment or the file later. Every problem is reported as ``key.path: reason``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from ktsync.config.model import (
    DEFAULT_SOURCE,
    DELETION_POLICIES,
    FIELD_TYPES,
    LISTID_MISSING,
    PRIVACY_DELETION_POLICIES,
    ConfigError,
    FieldMapping,
    Settings,
    SourceSettings,
    TagRule,
)
from ktsync.config.schema import SettingsSchema

DEFAULT_CONFIG_PATH = Path(__file__).with_name("ktsync.yaml")

# The values live in config.model; these are re-exported because every entry point imports them here.
__all__ = [
    "DEFAULT_CONFIG_PATH",
    "FIELD_TYPES",
    "LISTID_MISSING",
    "ConfigError",
    "FieldMapping",
    "Settings",
    "SourceSettings",
    "TagRule",
    "load_settings",
    "settings_from_dict",
]


# Environment variable -> (config path, converter). Part of the public interface: see README.
ENV_OVERRIDES: Mapping[str, tuple[str, ...]] = {
    "KTSYNC_REDIS_URL": ("redis", "url"),
    "KLICKTIPP_BASE_URL": ("klicktipp", "base_url"),
    "KTSYNC_KLICKTIPP_DELETION_POLICY": ("sync", "klicktipp_deletion_policy"),
    "KTSYNC_RATE_LIMIT": ("rate", "per_second"),
    "KTSYNC_RATE_BURST": ("rate", "burst"),
    "KTSYNC_MAX_IN_FLIGHT": ("rate", "max_in_flight"),
    "KTSYNC_BEAT_SCHEDULE_FILE": ("beat", "schedule_file"),
}
LISTID_ENV = "KTSYNC_LISTID"
DELETION_POLICY_ENV = "KTSYNC_DELETION_POLICY"
PRIVACY_DELETION_POLICY_ENV = "KTSYNC_PRIVACY_DELETION_POLICY"
CONFIG_PATH_ENV = "KTSYNC_CONFIG"


def load_settings(env: Mapping[str, str] | None = None, path: Path | None = None) -> Settings:
    """Read the config file (``KTSYNC_CONFIG`` or the default), apply the environment, validate."""
    environ = os.environ if env is None else env
    config_path = path or Path(environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([("$", f"cannot read {config_path}: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("$", f"not valid YAML: {exc}")], str(config_path)) from None
    return settings_from_dict(raw, environ, origin=str(config_path))


def settings_from_dict(raw: object, env: Mapping[str, str], origin: str = "") -> Settings:
    """Validate a decoded config document with the environment applied on top."""
    if not isinstance(raw, dict):
        raise ConfigError([("$", "the config must be a mapping")], origin)
    document = _apply_env(raw, env)
    try:
        data = SettingsSchema().load(document)
    except ValidationError as exc:
        raise _config_error(_flatten(exc.messages), env, origin) from None
    sources = _build_sources(data["sources"], _source_overrides(env))
    redis = data["redis"]
    return Settings(
        redis_url=redis.get("url", "redis://127.0.0.1:6379/0"),
        key_prefix=redis.get("key_prefix", "ktsync"),
        broker_prefix=redis.get("broker_prefix", ""),
        klicktipp=data["klicktipp"],
        worker=data["worker"],
        sources=sources,
        sync=data["sync"],
        rate=data["rate"],
        retry=data["retry"],
        deadletter=data["deadletter"],
        reconcile=data["reconcile"],
        bulk=data["bulk"],
        beat=data["beat"],
    )


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    document = {key: (dict(value) if isinstance(value, dict) else value) for key, value in raw.items()}
    for name, (section, key) in ENV_OVERRIDES.items():
        value = env.get(name, "").strip()
        if value:
            target = document.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = value
    return document


def _config_error(problems: list[tuple[str, str]], env: Mapping[str, str], origin: str) -> ConfigError:
    """Problems of a value the environment set name the variable (``KTSYNC_RATE_LIMIT=abc``), not the
    key in the file that the variable overrode."""
    by_key = {".".join(path): name for name, path in ENV_OVERRIDES.items() if env.get(name, "").strip()}
    named = [(_env_named(by_key[key], env) if key in by_key else key, reason) for key, reason in problems]
    from_env = sum(key in by_key for key, _ in problems)
    if from_env == len(problems):
        origin = "the environment"
    elif from_env:
        origin = f"{origin} and the environment"
    return ConfigError(named, origin)


def _env_named(name: str, env: Mapping[str, str]) -> str:
    """``NAME=value``, with the password of a URL (``redis://:secret@host``) left out."""
    value = env[name].strip()
    scheme, sep, rest = value.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        value = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return f"{name}={value}"


def _source_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Environment values that apply to every source (KTSYNC_LISTID, KTSYNC_[PRIVACY_]DELETION_POLICY)."""
    overrides: dict[str, Any] = {}
    listid = env.get(LISTID_ENV, "").strip()
    if listid:
        if not listid.isdigit() or int(listid) < 1:
            raise ConfigError([(LISTID_ENV, f"must be a positive opt-in process id, got {listid!r}")])
        overrides["listid"] = int(listid)
    policy = env.get(DELETION_POLICY_ENV, "").strip()
    if policy:
        if policy not in DELETION_POLICIES:
            raise ConfigError(
                [(DELETION_POLICY_ENV, f"must be one of {', '.join(DELETION_POLICIES)}, got {policy!r}")]
            )
        overrides["deletion_policy"] = policy
    privacy = env.get(PRIVACY_DELETION_POLICY_ENV, "").strip()
    if privacy:
        if privacy not in PRIVACY_DELETION_POLICIES:
            allowed = ", ".join(PRIVACY_DELETION_POLICIES)
            raise ConfigError([(PRIVACY_DELETION_POLICY_ENV, f"must be one of {allowed}, got {privacy!r}")])
        overrides["privacy_deletion_policy"] = privacy
    return overrides


def _build_sources(
    raw: Mapping[str, dict[str, Any]], overrides: Mapping[str, Any]
) -> dict[str, SourceSettings]:
    base = raw[DEFAULT_SOURCE]
    return {name: _source(name, {**base, **entry, **overrides}) for name, entry in raw.items()}


def _source(name: str, data: dict[str, Any]) -> SourceSettings:
    tags = data.get("tags") or {"prefix": "[CRM]", "rules": []}
    return SourceSettings(
        name=name,
        listid=data.get("listid"),
        crm_id_field=data.get("crm_id_field", "CRM Contact ID"),
        default_country=data.get("default_country", "49"),
        fields=tuple(
            FieldMapping(property=prop, field=t["field"], label=t["label"], type=t["type"])
            for prop, t in data.get("field_map", {}).items()
        ),
        tag_prefix=tags["prefix"],
        tag_rules=tuple(TagRule(property=r["property"], tag=r["tag"]) for r in tags["rules"]),
        deletion_policy=data.get("deletion_policy", "untag"),
        callback_url=data.get("callback_url"),
        privacy_deletion_policy=data.get("privacy_deletion_policy", SourceSettings.privacy_deletion_policy),
    )


def _flatten(messages: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            # marshmallow's Dict nests value errors under "value"; the key path is what readers need
            skip = key in ("_schema", "value")
            name = prefix if skip else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(_flatten(value, name))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(prefix or "$", "unknown key" if m == "Unknown field." else m) for m in messages]
    if isinstance(messages, list):
        return [p for m in messages for p in _flatten(m, prefix)]
    return [(prefix or "$", str(messages))]
