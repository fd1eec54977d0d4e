"""The overview page's figures: the shared lanes, and per tenant its budget, 429s, dead letters and an
hour of history. Read-only; a few pipelined Redis reads per tenant (the lanes once, they are shared).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from ktsync.config.model import TenantSpec
from ktsync.config.secrets import Keyring, SecretError
from ktsync.config.settings import ConfigError, Settings, tenant_settings
from ktsync.config.tenants import tenant_env
from ktsync.core import series
from ktsync.core.broker import deferred_by_lane
from ktsync.core.lanes import LANES
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.queues import (
    LimiterStatus,
    dead_letter_counts,
    lane_report,
    limiter_status,
    parked_status,
    queue_statuses,
    routed_queues,
)
from ktsync.tenant_ops import deferred_by_key, deferred_of
from ktsync.tenant_scope import current_view
from ktsync.worker.credentials import refused_credentials
from ktsync.worker.lanemetrics import recent_shares
from ktsync.worker.recovery import live_sessions, read_recovery
from ktsync.worker.runtime import account_key, limits
from ktsync.worker.stats import RedisStats
from ktsync.worker.telemetry import throttled_calls


@dataclass(frozen=True)
class TenantFigures:
    name: str
    enabled: bool
    limiter: LimiterStatus | None
    throttled: int  # KlickTipp 429 answers so far
    dead_letters: dict[str, int]  # reason -> count
    outcomes: dict[str, int]
    refused: list[dict[str, Any]]
    history: dict[str, list[series.Point]]  # lane -> an hour, oldest first
    at: float = 0.0  # when it was read
    deferred: int = 0  # tasks waiting for the budget of the tenant's KlickTipp login
    error: str = ""  # why the tenant's settings could not be read

    @property
    def dead_letter_total(self) -> int:
        return sum(self.dead_letters.values())

    def throughput(self, lane: str) -> float:
        """Tasks per second that reached an outcome lately (see :func:`ktsync.core.series.throughput`)."""
        return series.throughput(self.history.get(lane, []), self.at)

    def budget_use(self) -> float | None:
        """The share of the burst spent right now (0: full bucket)."""
        if self.limiter is None or not self.limiter.burst:
            return None
        return max(0.0, 1 - self.limiter.tokens / self.limiter.burst)


@dataclass(frozen=True)
class Overview:
    at: float
    lanes: dict[str, dict[str, Any]]  # lane -> pending, oldest age, in flight, deferred, share
    parked: int
    sessions: list[dict[str, Any]]
    recovery: dict[str, int]
    tenants: list[TenantFigures] = field(default_factory=list)


def throttled_so_far(client: redis.Redis, prefix: str) -> int:
    """KlickTipp's 429 answers recorded so far (``{p}:metrics:calls``, fields ``{operation}|{status}``)."""
    raw = cast(dict[bytes, bytes], client.hgetall(f"{prefix}:metrics:calls"))
    return throttled_calls({k.decode(): int(v) for k, v in raw.items()})


def _tenant(
    client: redis.Redis,
    name: str,
    enabled: bool,
    conf: Settings,
    env: Mapping[str, str],
    now: float,
    deferred: Mapping[str, int],
) -> TenantFigures:
    prefix, account = conf.key_prefix, account_key(env)
    by_reason: Counter[str] = Counter()
    for (reason, _code), count in dead_letter_counts(client, prefix).items():
        by_reason[reason] += count
    limiter = limiter_status(client, conf.deployment_prefix, account, limits=limits(conf))
    return TenantFigures(
        name=name,
        enabled=enabled,
        limiter=limiter,
        throttled=throttled_so_far(client, prefix),
        dead_letters=dict(by_reason),
        outcomes=RedisStats(client, prefix).snapshot(),
        refused=refused_credentials(client, prefix),
        history=series.read(client, prefix, now),
        at=now,
        deferred=deferred_of(deferred, account),
    )


def _broken(name: str, enabled: bool, why: str) -> TenantFigures:
    return TenantFigures(name, enabled, None, 0, {}, {}, [], {}, error=why)


def tenant_figures(
    client: redis.Redis,
    settings: Settings,
    spec: TenantSpec,
    env: Mapping[str, str],
    now: float,
    deferred: Mapping[str, int],
) -> TenantFigures:
    """One registered tenant's figures (its settings and credentials read as its workers read them)."""
    try:
        conf = tenant_settings(settings, spec, env)
        own = tenant_env(env, spec, Keyring.from_env(env))
    except (ConfigError, SecretError) as exc:
        return _broken(spec.name, spec.enabled, str(exc))
    return _tenant(client, spec.name, spec.enabled, conf, own, now, deferred)


def gather(
    client: redis.Redis, settings: Settings, env: Mapping[str, str], now: float | None = None
) -> Overview:
    """Everything the overview shows (``settings``: the deployment's)."""
    now = time.time() if now is None else now
    shared = settings.deployment_prefix
    parked = parked_status(client, shared, now)
    queues = queue_statuses(
        client, routed_queues(settings), now, settings.broker_prefix, parked=parked.count, key_prefix=shared
    )
    lanes = lane_report(
        settings, queues, deferred_by_lane(client, shared), recent_shares(client, settings.key_prefix, now)
    )
    view, deferred = current_view(settings, client), deferred_by_key(client, shared)
    tenants = [_tenant(client, DEFAULT_TENANT, True, settings, env, now, deferred)]
    tenants += [
        tenant_figures(client, settings, view.specs[name], env, now, deferred) for name in sorted(view.specs)
    ]
    tenants += [_broken(name, False, why) for name, why in sorted(view.broken.items())]
    return Overview(
        at=now,
        lanes={lane.value: lanes[lane.value] for lane in LANES},
        parked=parked.count,
        sessions=live_sessions(client, shared),
        recovery=read_recovery(client, shared),
        tenants=tenants,
    )
