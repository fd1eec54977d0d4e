"""The tenant registry: tenants operators add, change, disable and remove at run time (Redis, and a twin).

Key layout (``{p}`` the deployment's ``redis.key_prefix``):

* ``{p}:tenants``           hash: tenant name -> its stored document (JSON; secrets encrypted or referenced)
* ``{p}:tenants:disabled``  hash: tenant name -> when it was disabled (Unix seconds); any tenant, the
  config file's included
* ``{p}:tenants:version``   a counter raised by every change: workers read it (one GET every few
  seconds) and reload the registry only when it moved

Which tenants exist is :func:`tenant_view`: ``default`` (the top-level settings), the config file's
and the registry's. A name is defined once: the registry refuses a config-file tenant's name.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import redis

from ktsync.config.model import ConfigError, TenantSpec
from ktsync.config.tenants import parse_tenant
from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import DEFAULT_TENANT

REGISTRY = "registry"  # the origin of a registry tenant
# Seconds a process trusts its view of the registry: a change reaches every worker and producer within it.
WATCH_INTERVAL = 2.0


@dataclass(frozen=True)
class Snapshot:
    """The registry at one version: stored documents and disabled names."""

    version: int = 0
    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    disabled: Mapping[str, float] = field(default_factory=dict)


class TenantRegistry(Protocol):
    def version(self) -> int: ...

    def snapshot(self) -> Snapshot: ...

    def put(self, name: str, document: Mapping[str, Any]) -> None: ...

    def remove(self, name: str) -> bool: ...

    def set_disabled(self, name: str, disabled: bool) -> None: ...


def registry_keys(prefix: str) -> tuple[str, str, str]:
    return f"{prefix}:tenants", f"{prefix}:tenants:disabled", f"{prefix}:tenants:version"


class RedisTenantRegistry:
    def __init__(self, client: redis.Redis, prefix: str = "ktsync") -> None:
        self._redis = client
        self._documents, self._disabled, self._version = registry_keys(prefix)

    def version(self) -> int:
        return int(cast(bytes | None, self._redis.get(self._version)) or 0)

    def snapshot(self) -> Snapshot:
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._version)
        pipe.hgetall(self._documents)
        pipe.hgetall(self._disabled)
        version, documents, disabled = pipe.execute()
        return Snapshot(
            int(version or 0),
            {name.decode(): json.loads(doc) for name, doc in documents.items()},
            {name.decode(): float(when) for name, when in disabled.items()},
        )

    def put(self, name: str, document: Mapping[str, Any]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._documents, name, json.dumps(document, sort_keys=True))
        pipe.incr(self._version)
        pipe.execute()

    def remove(self, name: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._documents, name)
        pipe.hdel(self._disabled, name)
        pipe.incr(self._version)
        removed, _, _ = pipe.execute()
        return bool(removed)

    def set_disabled(self, name: str, disabled: bool) -> None:
        pipe = self._redis.pipeline(transaction=True)
        if disabled:
            pipe.hset(self._disabled, name, repr(time.time()))
        else:
            pipe.hdel(self._disabled, name)
        pipe.incr(self._version)
        pipe.execute()


class MemoryTenantRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot()

    def version(self) -> int:
        return self._snapshot.version

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def _change(self, documents: Mapping[str, Mapping[str, Any]], disabled: Mapping[str, float]) -> None:
        self._snapshot = Snapshot(self._snapshot.version + 1, dict(documents), dict(disabled))

    def put(self, name: str, document: Mapping[str, Any]) -> None:
        with self._lock:
            stored = json.loads(json.dumps(document))
            self._change({**self._snapshot.documents, name: stored}, self._snapshot.disabled)

    def remove(self, name: str) -> bool:
        with self._lock:
            documents = dict(self._snapshot.documents)
            removed = documents.pop(name, None) is not None
            disabled = {k: v for k, v in self._snapshot.disabled.items() if k != name}
            self._change(documents, disabled)
            return removed

    def set_disabled(self, name: str, disabled: bool) -> None:
        with self._lock:
            marks = dict(self._snapshot.disabled)
            if disabled:
                marks[name] = time.time()
            else:
                marks.pop(name, None)
            self._change(self._snapshot.documents, marks)


class TenantRefused(KtsyncError):
    """A message names a tenant this deployment does not serve (unknown or disabled)."""

    reason = "config"

    def __init__(self, tenant: str, why: str) -> None:
        self.tenant, self.why = tenant, why
        super().__init__(f"tenant: {why}")

    def to_dict(self) -> dict[str, Any]:
        return {"errors": [{"field": "tenant", "reason": self.why}], "tenant": self.tenant}


@dataclass(frozen=True)
class TenantView:
    """Every tenant the deployment knows at one registry version (``default`` is not in ``specs``)."""

    specs: Mapping[str, TenantSpec] = field(default_factory=dict)
    version: int = 0
    broken: Mapping[str, str] = field(default_factory=dict)  # registry entries that no longer validate

    def lookup(self, name: str) -> TenantSpec | None:
        """The tenant's spec (None for ``default``); :class:`TenantRefused` if it is unknown or disabled."""
        if name == DEFAULT_TENANT:
            return None
        spec = self.specs.get(name)
        if spec is None:
            if name in self.broken:
                raise TenantRefused(name, f"tenant {name!r} is registered but invalid: {self.broken[name]}")
            raise TenantRefused(name, f"unknown tenant {name!r} (`ktsync tenant list` shows the tenants)")
        if not spec.enabled:
            raise TenantRefused(name, f"tenant {name!r} is disabled (`ktsync tenant enable {name}`)")
        return spec

    def enabled(self) -> list[str]:
        """Every tenant that takes work, ``default`` first."""
        return [DEFAULT_TENANT, *sorted(name for name, spec in self.specs.items() if spec.enabled)]


def tenant_view(config_tenants: Mapping[str, TenantSpec], snapshot: Snapshot) -> TenantView:
    """The config file's tenants and the registry's, disabled marks applied. Pure."""
    specs: dict[str, TenantSpec] = dict(config_tenants)
    broken: dict[str, str] = {}
    for name, document in snapshot.documents.items():
        if name in config_tenants:
            continue  # the config file's definition wins (the registry refuses such names anyway)
        try:
            specs[name] = parse_tenant(name, document, origin=REGISTRY)
        except ConfigError as exc:
            broken[name] = "; ".join(f"{key}: {reason}" for key, reason in exc.problems)
    for name in snapshot.disabled:
        if name in specs:
            specs[name] = replace(specs[name], enabled=False)
    return TenantView(specs, snapshot.version, broken)


class WatchedTenants:
    """A process's current :class:`TenantView`, re-read when the registry's version moves; the version
    is asked at most every ``interval`` seconds, so a change reaches every process within that time."""

    def __init__(
        self,
        config_tenants: Mapping[str, TenantSpec],
        registry: TenantRegistry,
        *,
        interval: float = WATCH_INTERVAL,
        clock: Any = time.monotonic,
    ) -> None:
        self._config, self._registry, self._interval, self._clock = config_tenants, registry, interval, clock
        self._lock = threading.Lock()
        self._view: TenantView | None = None
        self._checked = -float("inf")

    def current(self) -> TenantView:
        now = self._clock()
        view = self._view
        if view is not None and now - self._checked < self._interval:
            return view
        with self._lock:
            if self._view is not None and now - self._checked < self._interval:
                return self._view
            if self._view is None or self._registry.version() != self._view.version:
                self._view = tenant_view(self._config, self._registry.snapshot())
            self._checked = now
            return self._view
