"""Load, validate and freeze ktsync's settings: the YAML file plus environment overrides.

Settings are read once at an entry point (CLI command, worker start) and passed down; nothing reads
the environment or the file later. Every problem is reported as ``key.path: reason``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

DEFAULT_CONFIG_PATH = Path(__file__).with_name("ktsync.yaml")
FIELD_TYPES = (
    "line",
    "paragraph",
    "email",
    "number",
    "decimal",
    "url",
    "date",
    "datetime",
    "time",
    "html",
    "phone",
)
POOLS = ("threads", "prefork", "solo", "gevent", "eventlet")
DELETION_POLICIES = ("untag", "unsubscribe", "delete", "ignore")
KLICKTIPP_DELETION_POLICIES = ("review", "delete_in_crm", "anonymize")
DEFAULT_SOURCE = "default"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists ``(key, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], origin: str = "") -> None:
        self.problems = sorted(problems)
        where = f" in {origin}" if origin else ""
        lines = "\n".join(f"  {key}: {reason}" for key, reason in self.problems)
        super().__init__(f"invalid configuration{where}:\n{lines}")


@dataclass(frozen=True)
class FieldMapping:
    """Where one CRM property goes: a KlickTipp field key (or a label to resolve) and its type."""

    property: str
    field: str | None
    label: str | None
    type: str = "line"


@dataclass(frozen=True)
class TagRule:
    property: str
    tag: str  # template with {value}


@dataclass(frozen=True)
class SourceSettings:
    name: str
    listid: int | None
    crm_id_field: str
    default_country: str
    fields: tuple[FieldMapping, ...]
    tag_prefix: str
    tag_rules: tuple[TagRule, ...]
    deletion_policy: str = "untag"
    callback_url: str | None = None


@dataclass(frozen=True)
class SyncSettings:
    klicktipp_deletion_policy: str = "review"
    event_id_ttl: int = 7 * 24 * 3600  # seconds an event_id is remembered, for duplicate detection
    lock_lease: int = 120  # seconds a per-contact lock outlives a worker that died holding it
    outbound_maxlen: int = 100_000  # approximate cap of the outbound stream


@dataclass(frozen=True)
class KlickTippSettings:
    base_url: str = "https://api.klicktipp.com"
    connect_timeout: float = 3.05
    read_timeout: float = 20.0
    reference_ttl: int = 300


@dataclass(frozen=True)
class WorkerSettings:
    queue: str = "ktsync"
    concurrency: int = 8
    pool: str = "threads"
    visibility_timeout: int = 3600


@dataclass(frozen=True)
class Settings:
    redis_url: str
    key_prefix: str
    broker_prefix: str
    klicktipp: KlickTippSettings
    worker: WorkerSettings
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    sync: SyncSettings = field(default_factory=SyncSettings)

    def source(self, name: str) -> SourceSettings:
        """The settings for a source; sources without an entry use ``default``."""
        return self.sources.get(name) or replace(self.sources[DEFAULT_SOURCE], name=name)

    def worker_problems(self) -> list[tuple[str, str]]:
        """What a worker cannot run without (producers need none of it)."""
        return [
            (f"sources.{name}.listid", LISTID_MISSING) for name, s in self.sources.items() if s.listid is None
        ]


LISTID_MISSING = (
    "no opt-in process: set it here or in KTSYNC_LISTID "
    "(ktsync never falls back to the account's default double opt-in silently)"
)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _FieldTarget(fields.Field[dict[str, Any]]):
    """A field mapping written as ``fieldKey`` or ``{field: key | label: "Label", type: t}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, str):
            value = {"field": value}
        if not isinstance(value, dict):
            raise ValidationError("must be a field key or {field|label, type}")
        loaded: dict[str, Any] = _FieldTargetSchema().load(value)
        return loaded


class _FieldTargetSchema(_Strict):
    field = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^field\w+$", error="must be a field key like fieldFirstName"),
    )
    label = fields.String(load_default=None, validate=validate.Length(min=1))
    type = fields.String(load_default="line", validate=validate.OneOf(FIELD_TYPES))

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("field") is None) == (data.get("label") is None):
            raise ValidationError("give exactly one of field (a key) or label", field_name="field")


class _TagRuleSchema(_Strict):
    property = fields.String(required=True, validate=validate.Length(min=1))
    tag = fields.String(
        required=True, validate=validate.Regexp(r".*\{value\}.*", error="must contain {{value}}")
    )


class _TagsSchema(_Strict):
    prefix = fields.String(load_default="[CRM]", validate=validate.Length(min=1))
    rules = fields.List(fields.Nested(_TagRuleSchema), load_default=list)

    @validates_schema
    def _owned(self, data: dict[str, Any], **_: Any) -> None:
        prefix = data.get("prefix", "[CRM]")
        bad = [i for i, rule in enumerate(data.get("rules", [])) if not rule["tag"].startswith(prefix)]
        if bad:
            raise ValidationError(
                {
                    str(i): {
                        "tag": [
                            f"must start with the owned prefix {prefix!r}, or ktsync could never remove it"
                        ]
                    }
                    for i in bad
                },
                field_name="rules",
            )


class _SourceSchema(_Strict):
    listid = fields.Integer(allow_none=True, strict=False, validate=validate.Range(min=1))
    crm_id_field = fields.String(validate=validate.Length(min=1))
    default_country = fields.String(
        validate=validate.Regexp(r"^[1-9]\d{0,2}$", error="must be a calling code like 49")
    )
    tags = fields.Nested(_TagsSchema)
    deletion_policy = fields.String(validate=validate.OneOf(DELETION_POLICIES))
    callback_url = fields.Url(allow_none=True, schemes={"http", "https"}, require_tld=False)
    field_map = fields.Dict(
        data_key="fields", keys=fields.String(validate=validate.Length(min=1)), values=_FieldTarget()
    )


class _KlickTippSchema(_Strict):
    base_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    connect_timeout = fields.Float(validate=validate.Range(min=0.1, max=120))
    read_timeout = fields.Float(validate=validate.Range(min=0.1, max=600))
    reference_ttl = fields.Integer(validate=validate.Range(min=1))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> KlickTippSettings:
        return KlickTippSettings(**data)


class _WorkerSchema(_Strict):
    queue = fields.String(validate=validate.Regexp(r"^[\w.-]{1,64}$"))
    concurrency = fields.Integer(validate=validate.Range(min=1, max=512))
    pool = fields.String(validate=validate.OneOf(POOLS))
    visibility_timeout = fields.Integer(validate=validate.Range(min=60))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> WorkerSettings:
        return WorkerSettings(**data)


class _RedisSchema(_Strict):
    url = fields.String(validate=validate.Regexp(r"^(redis|rediss|unix)://", error="must be a redis:// URL"))
    key_prefix = fields.String(validate=validate.Regexp(r"^[\w.-]{1,64}$"))
    broker_prefix = fields.String(validate=validate.Regexp(r"^[\w.:-]{0,64}$"))


class _SyncSchema(_Strict):
    klicktipp_deletion_policy = fields.String(validate=validate.OneOf(KLICKTIPP_DELETION_POLICIES))
    event_id_ttl = fields.Integer(validate=validate.Range(min=60))
    lock_lease = fields.Integer(validate=validate.Range(min=5, max=3600))
    outbound_maxlen = fields.Integer(validate=validate.Range(min=100))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> SyncSettings:
        return SyncSettings(**data)


class _SettingsSchema(_Strict):
    version = fields.Integer(required=True, validate=validate.Equal(1, error="must be 1"))
    redis = fields.Nested(_RedisSchema, load_default=dict)
    klicktipp = fields.Nested(_KlickTippSchema, load_default=KlickTippSettings)
    worker = fields.Nested(_WorkerSchema, load_default=WorkerSettings)
    sync = fields.Nested(_SyncSchema, load_default=SyncSettings)
    sources = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z0-9_-]{1,32}$")),
        values=fields.Nested(_SourceSchema),
        required=True,
    )

    @validates_schema
    def _has_default(self, data: dict[str, Any], **_: Any) -> None:
        if DEFAULT_SOURCE not in data.get("sources", {}):
            raise ValidationError(f"needs a {DEFAULT_SOURCE!r} entry", field_name="sources")


# Environment variable -> (config path, converter). Part of the public interface: see README.
ENV_OVERRIDES: Mapping[str, tuple[str, ...]] = {
    "KTSYNC_REDIS_URL": ("redis", "url"),
    "KLICKTIPP_BASE_URL": ("klicktipp", "base_url"),
    "KTSYNC_KLICKTIPP_DELETION_POLICY": ("sync", "klicktipp_deletion_policy"),
}
LISTID_ENV = "KTSYNC_LISTID"
DELETION_POLICY_ENV = "KTSYNC_DELETION_POLICY"
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
        data = _SettingsSchema().load(document)
    except ValidationError as exc:
        raise ConfigError(_flatten(exc.messages), origin) from None
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


def _source_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Environment values that apply to every source (KTSYNC_LISTID, KTSYNC_DELETION_POLICY)."""
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
