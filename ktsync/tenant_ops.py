"""Operator commands on one tenant: its Redis block and environment, and the per-tenant summary.

A command scoped with ``--tenant`` reads and writes the tenant's keys (``settings.key_prefix``) and the
keys every tenant shares (``settings.deployment_prefix``: limiter, key queues, schedule, recovery), never
another tenant's. The summary of ``ktsync status`` costs a few Redis reads per tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, cast

import click
import redis

from ktsync.config.model import TenantSpec
from ktsync.config.secrets import Keyring, SecretError
from ktsync.config.settings import Settings
from ktsync.config.tenants import tenant_env
from ktsync.core.broker import key_queue, key_queue_registry
from ktsync.core.tenants import DEFAULT_TENANT, tenant_prefix
from ktsync.tenant_scope import current_view, find_spec, scoped_settings

USERNAME = "KLICKTIPP_USERNAME"


@contextmanager
def tenant_block(
    redis_block: Callable[..., Any], settings: Settings, tenant: str
) -> Iterator[tuple[redis.Redis, Settings]]:
    """``redis_block`` (a client, closed afterwards) with the settings of ``tenant``."""
    with redis_block(settings) as (client, conf):
        yield client, scoped_settings(conf, tenant, client=client)


def tenant_environ(
    settings: Settings, tenant: str, env: Mapping[str, str], *, client: redis.Redis | None = None
) -> dict[str, str]:
    """The environment as ``tenant``'s workers see it: its own credentials revealed, no other account's.
    ``settings``: the deployment's (a tenant's own settings know no tenants)."""
    if tenant == DEFAULT_TENANT:
        return dict(env)
    spec = find_spec(current_view(settings, client), tenant)
    assert spec is not None  # find_spec returns None only for the default tenant
    try:
        return tenant_env(env, spec, Keyring.from_env(env))
    except SecretError as exc:
        raise click.ClickException(f"tenant {tenant}: {exc}") from None


def spec_username(spec: TenantSpec, env: Mapping[str, str]) -> str | None:
    """The tenant's KlickTipp user name (never a secret), None when it cannot be read here."""
    secret = spec.credentials.get(USERNAME)
    if secret is None:
        return None
    try:
        return secret.reveal(env, None, what=f"tenants.{spec.name}.credentials.{USERNAME}")
    except SecretError:
        return None


def deferred_by_key(client: redis.Redis, deployment_prefix: str) -> dict[str, int]:
    """Tasks waiting in each fairness key's queue (``account:lane``), in two round trips."""
    keys = sorted(
        k.decode() for k in cast(set[bytes], client.smembers(key_queue_registry(deployment_prefix)))
    )
    if not keys:
        return {}
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.zcard(key_queue(deployment_prefix, key))
    return {key: int(count) for key, count in zip(keys, pipe.execute(), strict=True)}


def deferred_of(counts: Mapping[str, int], account: str) -> int:
    """The deferred tasks of one account (every lane). Tenants on one KlickTipp login share them. Pure."""
    return sum(count for key, count in counts.items() if key.rsplit(":", 1)[0] == account)


@dataclass(frozen=True)
class TenantSummary:
    tenant: str
    enabled: bool
    dead_letters: int
    deferred: int | None  # None: the tenant's KlickTipp user name cannot be read here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        deferred = "?" if self.deferred is None else str(self.deferred)
        state = "enabled" if self.enabled else "DISABLED"
        return f"tenant {self.tenant}: {state}, dead letters {self.dead_letters}, deferred {deferred}"


def tenant_summaries(
    client: redis.Redis, settings: Settings, env: Mapping[str, str], default_account: str
) -> list[TenantSummary]:
    """Every tenant the deployment knows (``default`` first, disabled ones too): enabled, dead letters
    waiting, tasks deferred for the budget of its account."""
    from ktsync.worker.runtime import account_key

    view = current_view(settings, client)
    shared = settings.deployment_prefix
    names = [DEFAULT_TENANT, *sorted(view.specs)]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zcard(f"{tenant_prefix(shared, name)}:dlq:index")
    letters = [int(n) for n in pipe.execute()]
    counts = deferred_by_key(client, shared)
    summaries = [TenantSummary(DEFAULT_TENANT, True, letters[0], deferred_of(counts, default_account))]
    for name, dead in zip(names[1:], letters[1:], strict=True):
        spec = view.specs[name]
        username = spec_username(spec, env)
        deferred = None if username is None else deferred_of(counts, account_key({USERNAME: username}))
        summaries.append(TenantSummary(name, spec.enabled, dead, deferred))
    return summaries
