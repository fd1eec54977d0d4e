"""What the console's pages work with: the deployment's settings, one Redis client, the environment
(tenants' credentials), its users, the audit log and a cached ping of the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click
import redis

from ktsync.config.settings import Settings
from ktsync.console.audit import AuditLog
from ktsync.console.auth import Users
from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.tenant_ops import tenant_environ
from ktsync.tenant_scope import current_view, scoped_settings

WORKERS_TTL = 15.0  # seconds a ping of the workers is shown before the next one (a ping lasts ~0.7 s)


class ConsoleError(KtsyncError):
    """Something a page cannot do, in words for the operator (shown on the page, never a traceback)."""


@dataclass
class Console:
    settings: Settings
    client: redis.Redis
    env: Mapping[str, str]
    users: Users
    audit: AuditLog
    ping: Callable[[], dict[str, Any] | None] = lambda: None
    clock: Callable[[], float] = time.time
    _workers: tuple[float, dict[str, Any] | None] = (0.0, None)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tenants(self) -> list[str]:
        view = current_view(self.settings, self.client)
        return [DEFAULT_TENANT, *sorted(view.specs)]

    def scoped(self, tenant: str) -> Settings:
        """The settings of ``tenant`` (its key prefix, sources, budget); ConsoleError when unknown."""
        try:
            return scoped_settings(self.settings, tenant or DEFAULT_TENANT, self.env, client=self.client)
        except click.ClickException as exc:
            raise ConsoleError(exc.format_message()) from None

    def tenant_env(self, tenant: str) -> dict[str, str]:
        """The environment as ``tenant``'s workers see it (its own credentials revealed)."""
        try:
            return tenant_environ(self.settings, tenant or DEFAULT_TENANT, self.env, client=self.client)
        except click.ClickException as exc:
            raise ConsoleError(exc.format_message()) from None

    def workers(self) -> dict[str, Any] | None:
        """The workers that answered the last ping (pinged again after :data:`WORKERS_TTL`)."""
        with self._lock:
            at, found = self._workers
            if self.clock() - at >= WORKERS_TTL:
                found = self.ping()
                self._workers = (self.clock(), found)
            return found
