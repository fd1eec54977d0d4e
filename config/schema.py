"""The marshmallow schemas of the config file: every key checked, every problem named by its path."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ktsync.config.model import (
    DEFAULT_SOURCE,
    DELETION_POLICIES,
    FIELD_TYPES,
    KLICKTIPP_DELETION_POLICIES,
    POOLS,
    PRIVACY_DELETION_POLICIES,
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
    type = fields.String(load_default=FieldMapping.type, validate=validate.OneOf(FIELD_TYPES))

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
    prefix = fields.String(load_default=SourceSettings.tag_prefix, validate=validate.Length(min=1))
    rules = fields.List(fields.Nested(_TagRuleSchema), load_default=list)

    @validates_schema
    def _owned(self, data: dict[str, Any], **_: Any) -> None:
        prefix = data.get("prefix", SourceSettings.tag_prefix)
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
    privacy_deletion_policy = fields.String(validate=validate.OneOf(PRIVACY_DELETION_POLICIES))
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


_QUEUE_NAME = validate.Regexp(r"^[\w.-]{1,64}$", error="must be 1-64 letters, digits, '_', '.' or '-'")


class _LaneQueuesSchema(_Strict):
    live = fields.String(validate=_QUEUE_NAME)
    bulk = fields.String(validate=_QUEUE_NAME)


class _WorkerSchema(_Strict):
    queue = fields.String(validate=_QUEUE_NAME)
    queues = fields.Nested(_LaneQueuesSchema)
    concurrency = fields.Integer(validate=validate.Range(min=1, max=512))
    pool = fields.String(validate=validate.OneOf(POOLS))
    visibility_timeout = fields.Integer(validate=validate.Range(min=5))
    restore_interval = fields.Integer(validate=validate.Range(min=1, max=3600))
    heartbeat_interval = fields.Float(validate=validate.Range(min=0.1, max=60))
    heartbeat_timeout = fields.Float(validate=validate.Range(min=1, max=3600))

    @validates_schema
    def _distinct_and_patient(self, data: dict[str, Any], **_: Any) -> None:
        queues = data.get("queues", {})
        named = WorkerSettings(
            queue=data.get("queue", WorkerSettings.queue),
            live_queue=queues.get("live", ""),
            bulk_queue=queues.get("bulk", ""),
        )
        if len(named.consumed_queues) < 3:  # consumed_queues drops repeats
            raise ValidationError("live, bulk and worker.queue must be three different queues", "queues")
        interval = data.get("heartbeat_interval", WorkerSettings.heartbeat_interval)
        if data.get("heartbeat_timeout", WorkerSettings.heartbeat_timeout) < 3 * interval:
            raise ValidationError(
                f"must be at least 3 x heartbeat_interval ({3 * interval:g} s): one late heartbeat is no death",
                "heartbeat_timeout",
            )

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> WorkerSettings:
        queues = data.pop("queues", {})
        return WorkerSettings(**data, live_queue=queues.get("live", ""), bulk_queue=queues.get("bulk", ""))


class _RateSchema(_Strict):
    per_second = fields.Float(validate=validate.Range(min=0, max=10_000))  # 0: no limiter
    burst = fields.Integer(validate=validate.Range(min=1, max=100_000))
    max_in_flight = fields.Integer(validate=validate.Range(min=0, max=10_000))
    max_wait = fields.Float(validate=validate.Range(min=0, max=60))
    bulk_share = fields.Float(validate=validate.Range(min=0, max=1))
    max_pause = fields.Float(validate=validate.Range(min=1, max=24 * 3600))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RateSettings:
        return RateSettings(**data)


class _BulkSchema(_Strict):
    max_backlog = fields.Integer(validate=validate.Range(min=1, max=10_000_000))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> BulkSettings:
        return BulkSettings(**data)


class _RetrySchema(_Strict):
    max_attempts = fields.Integer(validate=validate.Range(min=1, max=100))
    min_backoff = fields.Float(validate=validate.Range(min=0.01))
    max_backoff = fields.Float(validate=validate.Range(min=0.1, max=7 * 24 * 3600))
    max_broker_countdown = fields.Integer(validate=validate.Range(min=0, max=3600))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RetrySettings:
        return RetrySettings(**data)


class _DeadLetterSchema(_Strict):
    max_entries = fields.Integer(validate=validate.Range(min=1))
    max_age_days = fields.Float(validate=validate.Range(min=0.01))
    max_deliveries = fields.Integer(validate=validate.Range(min=1, max=100))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> DeadLetterSettings:
        return DeadLetterSettings(**data)


class _RedisSchema(_Strict):
    url = fields.String(
        load_default=Settings.redis_url,
        validate=validate.Regexp(r"^(redis|rediss|unix)://", error="must be a redis:// URL"),
    )
    key_prefix = fields.String(load_default=Settings.key_prefix, validate=validate.Regexp(r"^[\w.-]{1,64}$"))
    broker_prefix = fields.String(
        load_default=Settings.broker_prefix, validate=validate.Regexp(r"^[\w.:-]{0,64}$")
    )


class _SyncSchema(_Strict):
    klicktipp_deletion_policy = fields.String(validate=validate.OneOf(KLICKTIPP_DELETION_POLICIES))
    event_id_ttl = fields.Integer(validate=validate.Range(min=60))
    lock_lease = fields.Integer(validate=validate.Range(min=5, max=3600))
    outbound_maxlen = fields.Integer(validate=validate.Range(min=100))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> SyncSettings:
        return SyncSettings(**data)


class _ReconcileSchema(_Strict):
    interval = fields.Integer(validate=validate.Range(min=1))
    max_age = fields.Integer(validate=validate.Range(min=60))
    batch = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    retry_failed_after = fields.Integer(validate=validate.Range(min=60))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> ReconcileSettings:
        return ReconcileSettings(**data)


class _BeatSchema(_Strict):
    schedule_file = fields.String(allow_none=True, validate=validate.Length(max=4096))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> BeatSettings:
        return BeatSettings(schedule_file=data.get("schedule_file") or "")


class SettingsSchema(_Strict):
    version = fields.Integer(required=True, validate=validate.Equal(1, error="must be 1"))
    redis = fields.Nested(_RedisSchema, load_default=lambda: _RedisSchema().load({}))
    klicktipp = fields.Nested(_KlickTippSchema, load_default=KlickTippSettings)
    worker = fields.Nested(_WorkerSchema, load_default=WorkerSettings)
    sync = fields.Nested(_SyncSchema, load_default=SyncSettings)
    rate = fields.Nested(_RateSchema, load_default=RateSettings)
    retry = fields.Nested(_RetrySchema, load_default=RetrySettings)
    deadletter = fields.Nested(_DeadLetterSchema, load_default=DeadLetterSettings)
    reconcile = fields.Nested(_ReconcileSchema, load_default=ReconcileSettings)
    bulk = fields.Nested(_BulkSchema, load_default=BulkSettings)
    beat = fields.Nested(_BeatSchema, load_default=BeatSettings)
    sources = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z0-9_-]{1,32}$")),
        values=fields.Nested(_SourceSchema),
        required=True,
    )

    @validates_schema
    def _countdowns_below_visibility(self, data: dict[str, Any], **_: Any) -> None:
        # A broker countdown longer than the visibility timeout is redelivered, again and again.
        countdown = data.get("retry", RetrySettings()).max_broker_countdown
        visibility = data.get("worker", WorkerSettings()).visibility_timeout
        if countdown >= visibility:
            raise ValidationError(
                {"max_broker_countdown": [f"must be below worker.visibility_timeout ({visibility} s)"]},
                field_name="retry",
            )

    @validates_schema
    def _has_default(self, data: dict[str, Any], **_: Any) -> None:
        if DEFAULT_SOURCE not in data.get("sources", {}):
            raise ValidationError(f"needs a {DEFAULT_SOURCE!r} entry", field_name="sources")
