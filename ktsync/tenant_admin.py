"""Managing the tenant registry: add, update, list, show, disable, enable and remove tenants at run time.

The decisions are pure (which name may be added, what is stored, what is shown); the registry is any
:class:`~ktsync.config.registry.TenantRegistry` (Redis, or the in-memory twin in tests). Workers see a
change within :class:`~ktsync.config.registry.WatchedTenants`'s interval: no restart.

A stored document never holds a plain secret: :func:`~ktsync.config.tenants.sealed_document` encrypts
it with the first key of ``KTSYNC_SECRET_KEY``; an encrypted one given again is encrypted anew with that
key (so ``update`` after putting a new key first re-encrypts: rotation). ``--purge`` removes every key
under the tenant's prefix (``<p>@<name>:``, never ``<p>@<name>2:``, never the default tenant's), its
parked retries in the shared schedule, and its deferred tasks in the shared key queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

import redis
import yaml

from ktsync.config.model import ConfigError, Settings, TenantSpec
from ktsync.config.registry import REGISTRY, TenantRegistry, tenant_view
from ktsync.config.secrets import Keyring, Secret
from ktsync.config.settings import tenant_settings
from ktsync.config.tenants import TENANT_VARIABLES, parse_tenant, sealed_document, shown_document
from ktsync.core.broker import key_queue, key_queue_registry
from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name, tenant_of, tenant_prefix
from ktsync.worker.keyqueues import REMOVE_LUA
from ktsync.worker.schedule import Parked

BATCH = 500  # keys per SCAN step and per UNLINK / ZREM


class TenantAdminError(KtsyncError):
    """An operator's request that cannot be done as asked (a name taken, unknown, or the config file's)."""

    reason = "config"


@dataclass(frozen=True)
class TenantRow:
    """One line of ``ktsync tenant list``."""

    name: str
    enabled: bool
    origin: str
    per_second: float | None  # None: a registry entry that no longer validates
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "enabled": self.enabled, "origin": self.origin,
                "per_second": self.per_second, "problem": self.problem}  # fmt: skip


@dataclass(frozen=True)
class Purged:
    """What ``remove --purge`` removed."""

    keys: int = 0  # keys under the tenant's prefix
    parked: int = 0  # parked retries in the shared schedule
    deferred: int = 0  # tasks in the shared key queues


def read_document(text: str, origin: str) -> object:
    """A tenant file's document (YAML, hence JSON too); a ConfigError naming the file otherwise."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f"line {where.line + 1}" if where is not None else "$"
        raise ConfigError([(line, f"not valid YAML or JSON ({getattr(exc, 'problem', None) or exc})")],
                          origin) from None  # fmt: skip


def _check_name(settings: Settings, name: str) -> None:
    if name == DEFAULT_TENANT:
        raise TenantAdminError(
            "'default' is the top-level settings of the config file, not a registry tenant"
        )
    if not is_tenant_name(name):
        raise TenantAdminError(f"tenant name {TENANT_RULE}, got {name!r}")
    if name in settings.tenants:
        raise TenantAdminError(
            f"tenant {name!r} is defined in {settings.tenants[name].origin or 'the config file'}; change it there"
        )


def resealed(spec: TenantSpec, keyring: Keyring | None) -> TenantSpec:
    """Encrypted secrets decrypted, so that :func:`sealed_document` encrypts them with the first key
    (an error naming the key when a token is not ours)."""
    credentials: dict[str, Secret] = {}
    for name, secret in spec.credentials.items():
        if secret.encrypted is not None and TENANT_VARIABLES[name]:
            secret = Secret(plain=secret.reveal({}, keyring, what=f"credentials.{name}"))
        credentials[name] = secret
    return replace(spec, credentials=credentials)


def stored_document(
    settings: Settings, name: str, raw_document: object, env: Mapping[str, str]
) -> dict[str, Any]:
    """What the registry stores for ``raw_document``: validated as the worker will build it (errors
    name the keys as in the tenant's file), secrets encrypted. Pure but for the key in ``env``."""
    spec = parse_tenant(name, raw_document, origin=f"tenant {name}", plain_secrets=True)
    tenant_settings(settings, spec, env)
    keyring = Keyring.from_env(env)
    document = sealed_document(resealed(spec, keyring), keyring)
    parse_tenant(name, document, origin=REGISTRY)  # what workers read back must validate
    return document


def add_tenant(
    settings: Settings, registry: TenantRegistry, name: str, raw_document: object, env: Mapping[str, str]
) -> TenantSpec:
    """Register a new tenant; refused for a name the registry or the config file has."""
    _check_name(settings, name)
    if name in registry.snapshot().documents:
        raise TenantAdminError(f"tenant {name!r} exists already; `ktsync tenant update {name}` changes it")
    document = stored_document(settings, name, raw_document, env)
    registry.put(name, document)
    return parse_tenant(name, document, origin=REGISTRY)


def update_tenant(
    settings: Settings,
    registry: TenantRegistry,
    name: str,
    raw_document: object | None,
    env: Mapping[str, str],
) -> TenantSpec:
    """Replace a registry tenant's document (``None``: keep it, its secrets encrypted again with the
    first key of ``KTSYNC_SECRET_KEY``, for key rotation). The disabled mark stays as it is."""
    _check_name(settings, name)
    stored = registry.snapshot().documents.get(name)
    if stored is None:
        raise TenantAdminError(f"no tenant {name!r} in the registry; `ktsync tenant add {name}` adds it")
    document = stored_document(settings, name, stored if raw_document is None else raw_document, env)
    registry.put(name, document)
    return parse_tenant(name, document, origin=REGISTRY)


def list_tenants(settings: Settings, registry: TenantRegistry) -> list[TenantRow]:
    """``default``, then every tenant of the config file and the registry, by name."""
    view = tenant_view(settings.tenants, registry.snapshot())
    rows = [TenantRow(DEFAULT_TENANT, True, "config file (top level)", settings.rate.per_second)]
    for name, spec in view.specs.items():
        rate = spec.sections.get("rate") or {}
        per_second = float(rate.get("per_second", settings.rate.per_second))
        rows.append(TenantRow(name, spec.enabled, spec.origin, per_second))
    rows += [TenantRow(name, False, REGISTRY, None, f"invalid: {why}") for name, why in view.broken.items()]
    return [rows[0], *sorted(rows[1:], key=lambda row: row.name)]


def find_tenant(settings: Settings, registry: TenantRegistry, name: str) -> TenantSpec:
    """A tenant of the config file or the registry, disabled or not."""
    if name == DEFAULT_TENANT:
        raise TenantAdminError("'default' is the top-level settings: see the config file (`ktsync config`)")
    view = tenant_view(settings.tenants, registry.snapshot())
    spec = view.specs.get(name)
    if spec is None:
        if name in view.broken:
            raise TenantAdminError(f"tenant {name!r} is registered but invalid: {view.broken[name]}")
        known = ", ".join(sorted(view.specs)) or "none"
        raise TenantAdminError(f"no tenant {name!r} (tenants: {known})")
    return spec


def show_tenant(settings: Settings, registry: TenantRegistry, name: str) -> dict[str, Any]:
    """The tenant's document as ``show`` prints it: secrets only as where they come from."""
    return {"name": name, **shown_document(find_tenant(settings, registry, name))}


def set_enabled(settings: Settings, registry: TenantRegistry, name: str, enabled: bool) -> None:
    """Disable or enable any tenant (the config file's too: the registry's disabled mark)."""
    if name not in registry.snapshot().documents:
        find_tenant(settings, registry, name)
    registry.set_disabled(name, not enabled)


def remove_tenant(
    settings: Settings,
    registry: TenantRegistry,
    name: str,
    *,
    purge: bool,
    client: redis.Redis | None = None,
) -> Purged | None:
    """Remove a registry tenant (its entry first, so workers stop taking its work); with ``purge``,
    every trace of it in ``client``'s Redis as well. A name no longer registered may still be purged."""
    _check_name(settings, name)
    removed = registry.remove(name)
    if not purge:
        if not removed:
            raise TenantAdminError(f"no tenant {name!r} in the registry")
        return None
    if client is None:
        raise TenantAdminError("purging needs Redis")
    return purge_tenant(client, settings.deployment_prefix, name)


def tenant_pattern(deployment_prefix: str, name: str) -> str:
    """The SCAN pattern of exactly ``name``'s keys (ends in ':': ``acme`` never matches ``acme2``'s)."""
    if name == DEFAULT_TENANT or not is_tenant_name(name):
        raise TenantAdminError(f"refusing to purge {name!r}: only a registry tenant's keys are purged")
    return f"{_glob_escape(tenant_prefix(deployment_prefix, name))}:*"


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def purge_tenant(client: redis.Redis, deployment_prefix: str, name: str) -> Purged:
    return Purged(
        keys=unlink_matching(client, tenant_pattern(deployment_prefix, name)),
        parked=purge_parked(client, f"{deployment_prefix}:schedule", name),
        deferred=purge_deferred(client, deployment_prefix, name),
    )


def unlink_matching(client: redis.Redis, pattern: str) -> int:
    """UNLINK every key matching ``pattern``, SCAN by SCAN (never KEYS: Redis stays responsive)."""
    count, cursor = 0, 0
    while True:
        cursor, keys = cast(tuple[int, list[bytes]], client.scan(cursor, match=pattern, count=BATCH))
        if keys:
            count += int(client.unlink(*keys))
        if cursor == 0:
            return count


def _members_of(client: redis.Redis, key: str, name: str) -> list[bytes]:
    """The members of a sorted set of :class:`Parked` entries whose message is ``name``'s."""
    mine = []
    for member, _ in client.zscan_iter(key, count=BATCH):
        try:
            entry = Parked.from_json(member)
        except (ValueError, KeyError, TypeError):
            continue  # not ours to judge
        if tenant_of(entry.message) == name:
            mine.append(cast(bytes, member))
    return mine


def purge_parked(client: redis.Redis, schedule_key: str, name: str) -> int:
    """Remove ``name``'s parked retries from the shared schedule."""
    mine = _members_of(client, schedule_key, name)
    for start in range(0, len(mine), BATCH):
        client.zrem(schedule_key, *mine[start : start + BATCH])
    return len(mine)


def purge_deferred(client: redis.Redis, deployment_prefix: str, name: str) -> int:
    """Remove ``name``'s deferred tasks from every key queue. A queue left empty is forgotten with its
    clock (as the mover does); a queue of a KlickTipp account another tenant shares keeps their tasks."""
    remove = client.register_script(REMOVE_LUA)
    registry, clocks = key_queue_registry(deployment_prefix), f"{deployment_prefix}:kq:clock"
    count = 0
    for raw in cast(set[bytes], client.smembers(registry)):
        fairness = raw.decode()
        queue = key_queue(deployment_prefix, fairness)
        mine = _members_of(client, queue, name)
        for start in range(0, len(mine), BATCH):
            client.zrem(queue, *mine[start : start + BATCH])
        if mine:  # the last one through the mover's script: forgets an empty queue atomically
            remove(keys=[queue, clocks, registry], args=[fairness, mine[-1]])
        count += len(mine)
    return count
