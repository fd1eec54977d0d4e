"""Load, validate and freeze ktsync's settings: the YAML file plus environment overrides.

Settings are read once at an entry point (CLI command, worker start) and passed down; nothing reads
the environment or the file later. Every problem is reported as ``key.path: reason``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
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
    TenantSpec,
)
from ktsync.config.schema import SettingsSchema
from ktsync.config.tenants import deployment_env, merged_document, parse_tenant
from ktsync.core.tenants import tenant_prefix

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
    "tenant_settings",
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
    raw_tenants = raw.get("tenants") or {}
    raw = {key: value for key, value in raw.items() if key != "tenants"}
    document = _apply_env(raw, env)
    try:
        data = SettingsSchema().load(document)
    except ValidationError as exc:
        raise _config_error(_flatten(exc.messages), env, origin) from None
    sources = _build_sources(data["sources"], _source_overrides(env))
    redis = data["redis"]
    settings = Settings(
        redis_url=redis.get("url", Settings.redis_url),
        key_prefix=redis.get("key_prefix", Settings.key_prefix),
        broker_prefix=redis.get("broker_prefix", Settings.broker_prefix),
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
        document=raw,
    )
    return replace(settings, tenants=_config_tenants(settings, raw_tenants, env, origin))


def _config_tenants(
    base: Settings, raw: object, env: Mapping[str, str], origin: str
) -> dict[str, TenantSpec]:
    """The config file's ``tenants`` section, each tenant's settings validated (errors name the key)."""
    if not isinstance(raw, Mapping):
        raise ConfigError([("tenants", "must be a mapping of tenant names to tenants")], origin)
    tenants: dict[str, TenantSpec] = {}
    problems: list[tuple[str, str]] = []
    for name, entry in raw.items():
        key = f"tenants.{name}."
        try:
            spec = parse_tenant(str(name), entry, origin=origin, key=key)
            tenant_settings(base, spec, env)
        except ConfigError as exc:
            problems += [
                (p if p.startswith(key.rstrip(".")) else f"{key}{p}", reason) for p, reason in exc.problems
            ]
            continue
        tenants[spec.name] = spec
    if problems:
        raise ConfigError(problems, origin)
    return tenants


def tenant_settings(base: Settings, spec: TenantSpec, env: Mapping[str, str] | None = None) -> Settings:
    """A tenant's settings: the deployment's document with the tenant's sections merged over it, its
    key prefix, and only the deployment-wide environment overrides (see :mod:`ktsync.config.tenants`).
    Errors name the tenant's keys (``sources.default.listid``), as in the tenant's own document."""
    document = merged_document(base.document, spec)
    built = settings_from_dict(document, deployment_env(env or {}), origin=f"tenant {spec.name}")
    problems = built.worker_problems()
    if problems:
        raise ConfigError(problems, f"tenant {spec.name}")
    prefix = base.deployment_prefix
    return replace(built, key_prefix=tenant_prefix(prefix, spec.name), tenant=spec.name, base_prefix=prefix,
                   tenants={}, redis_url=base.redis_url, broker_prefix=base.broker_prefix)  # fmt: skip


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
    tags = data.get("tags") or {"prefix": SourceSettings.tag_prefix, "rules": []}
    return SourceSettings(
        name=name,
        listid=data.get("listid"),
        crm_id_field=data.get("crm_id_field", SourceSettings.crm_id_field),
        default_country=data.get("default_country", SourceSettings.default_country),
        fields=tuple(
            FieldMapping(property=prop, field=t["field"], label=t["label"], type=t["type"])
            for prop, t in data.get("field_map", {}).items()
        ),
        tag_prefix=tags["prefix"],
        tag_rules=tuple(TagRule(property=r["property"], tag=r["tag"]) for r in tags["rules"]),
        deletion_policy=data.get("deletion_policy", SourceSettings.deletion_policy),
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
