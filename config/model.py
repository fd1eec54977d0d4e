"""ktsync's settings as frozen values: what the YAML file and the environment configure.

Built and validated by :mod:`ktsync.config.settings`; everything else only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ktsync.config.secrets import Secret
from ktsync.core.errors import KtsyncError
from ktsync.core.lanes import Lane
from ktsync.core.tenants import DEFAULT_TENANT

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
# What a privacy deletion (GDPR erasure: HubSpot ``contact.privacyDeletion``, ``contact.deleted`` with
# ``privacy: true``, ``ktsync contact forget``) does. ``delete`` is the only value: KlickTipp's API has
# no anonymization (overwriting the address would keep the opt-in record, IP and history), and any
# weaker policy would not erase. A setting all the same, so that a future value is a compatible change.
PRIVACY_DELETION_POLICIES = ("delete",)
DEFAULT_SOURCE = "default"


class ConfigError(KtsyncError, ValueError):
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
    listid: int | None  # required, no default: ktsync never falls back to a default opt-in process
    crm_id_field: str = "CRM Contact ID"  # label of the KlickTipp field that stores the CRM contact id
    default_country: str = "49"  # calling code for national phone numbers
    fields: tuple[FieldMapping, ...] = ()
    tag_prefix: str = "[CRM]"  # ktsync owns (adds and removes) only tags with this prefix
    tag_rules: tuple[TagRule, ...] = ()
    deletion_policy: str = "untag"
    callback_url: str | None = None
    privacy_deletion_policy: str = "delete"  # independent of deletion_policy (see PRIVACY_DELETION_POLICIES)


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
    """How workers consume: which queues (one per lane), how many tasks at once, how they watch each other.

    ``queue`` is the base name: the lanes are ``<queue>.live`` and ``<queue>.bulk`` unless named
    explicitly, and ``<queue>`` itself (the single queue of ktsync before lanes) is still consumed,
    as live work, so that messages of older producers are never stranded.
    """

    queue: str = "ktsync"
    concurrency: int = 8
    pool: str = "threads"
    visibility_timeout: int = 3600  # the broker's last resort; dead workers are found by their heartbeat
    restore_interval: int = 10  # seconds between kombu's sweeps for tasks past the visibility timeout
    live_queue: str = ""  # "" = "<queue>.live"
    bulk_queue: str = ""  # "" = "<queue>.bulk"
    heartbeat_interval: float = 2.0  # seconds between a worker's heartbeats
    heartbeat_timeout: float = 10.0  # a worker silent this long is dead: its tasks and locks are reclaimed

    def lane_queue(self, lane: Lane) -> str:
        """The Celery queue of a lane."""
        explicit = self.live_queue if lane is Lane.LIVE else self.bulk_queue
        return explicit or f"{self.queue}.{lane.value}"

    @property
    def consumed_queues(self) -> tuple[str, ...]:
        """Every queue a worker reads, in the order it takes work: live, the pre-lane queue, bulk."""
        return tuple(dict.fromkeys([self.lane_queue(Lane.LIVE), self.queue, self.lane_queue(Lane.BULK)]))

    def lane_of(self, queue: str | None) -> Lane:
        """The lane of a message that arrived on ``queue`` (the pre-lane queue and unknown ones: live)."""
        return Lane.BULK if queue and queue == self.lane_queue(Lane.BULK) else Lane.LIVE


@dataclass(frozen=True)
class RateSettings:
    """One budget per KlickTipp account, shared by every worker (see worker/ratelimit)."""

    per_second: float = 5.0  # 0: no limiter at all (for benchmarks and budgets KlickTipp confirmed unlimited)
    burst: int = 10
    max_in_flight: int = 4
    max_wait: float = 2.0  # seconds a task waits in place for the budget before it is deferred
    bulk_share: float = 0.25  # while live work waits, bulk work gets at most this share of the budget
    max_pause: float = 300.0  # cap of every server-chosen wait (Retry-After, account pauses), seconds


@dataclass(frozen=True)
class BulkSettings:
    """Flow control for bulk producers (imports, resyncs, replays)."""

    max_backlog: int = 10_000  # bulk messages waiting (queued or deferred) before producers wait


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 8
    min_backoff: float = 1.0
    max_backoff: float = 600.0
    max_broker_countdown: int = 60  # longer delays wait in ktsync's schedule, not in the broker


@dataclass(frozen=True)
class DeadLetterSettings:
    max_entries: int = 100_000
    max_age_days: float = 30.0
    max_deliveries: int = 3  # a message that killed its worker this often is dead-lettered as poison


@dataclass(frozen=True)
class ReconcileSettings:
    """What `ktsync beat` has the workers re-check, and how often."""

    interval: int = 3600  # seconds between runs
    max_age: int = 24 * 3600  # a contact not synced for this long is loaded again
    batch: int = 1000  # contacts re-checked per run at most
    retry_failed_after: int = 3600  # dead letters of transient causes are replayed after this long


DEFAULT_STATE_HOME = "~/.local/state"  # the XDG base-directory default for $XDG_STATE_HOME


@dataclass(frozen=True)
class BeatSettings:
    """Where `ktsync beat` keeps its schedule file (when each periodic job last ran, so that a
    restarted beat neither runs them all at once nor skips one)."""

    schedule_file: str = ""  # "": beat-schedule-<key_prefix> in ktsync's state directory (below)

    def schedule_path(self, key_prefix: str, env: Mapping[str, str]) -> Path:
        """The file, ``~`` expanded; by default under ``$XDG_STATE_HOME/ktsync`` (``~/.local/state``)."""
        if self.schedule_file:
            return Path(self.schedule_file).expanduser()
        state_home = env.get("XDG_STATE_HOME", "").strip() or str(Path(DEFAULT_STATE_HOME).expanduser())
        return Path(state_home) / "ktsync" / f"beat-schedule-{key_prefix}"


@dataclass(frozen=True)
class TenantSpec:
    """One tenant as configured (see :mod:`ktsync.config.tenants`): its credentials (the per-account
    variables, each a :class:`~ktsync.config.secrets.Secret`) and its own ``rate``/``sources``/``sync``
    sections (validated, merged over the deployment's when its settings are built)."""

    name: str
    credentials: Mapping[str, Secret]
    sections: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    origin: str = ""  # where it is defined: the config file's path, or "registry"


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "ktsync"  # prefix of every key ktsync itself writes
    broker_prefix: str = ""  # prefix of Celery's broker keys (kombu's global_keyprefix)
    klicktipp: KlickTippSettings = field(default_factory=KlickTippSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    sync: SyncSettings = field(default_factory=SyncSettings)
    rate: RateSettings = field(default_factory=RateSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    deadletter: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    bulk: BulkSettings = field(default_factory=BulkSettings)
    beat: BeatSettings = field(default_factory=BeatSettings)
    # The tenants of the config file (the registry's come at run time); none but ``default`` before 0.4.
    tenants: Mapping[str, TenantSpec] = field(default_factory=dict)
    # Whose settings these are: ``default`` (the top-level ones), or a tenant's, built by
    # ``ktsync.config.tenants.tenant_settings`` with ``key_prefix`` = the tenant's key prefix.
    tenant: str = DEFAULT_TENANT
    base_prefix: str = ""  # the deployment's ``redis.key_prefix`` in a tenant's settings ("" = key_prefix)
    # The config document as read, before the environment: what a tenant's settings are merged over.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def deployment_prefix(self) -> str:
        """The prefix of the keys every tenant shares (limiter, key queues, schedule, recovery, registry)."""
        return self.base_prefix or self.key_prefix

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
