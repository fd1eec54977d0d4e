"""Each tenant's webhooks: its routes ``/webhooks/{tenant}/{crm}``, its own secrets and its own dedupe keys.

Today's routes (``/webhooks/{crm}``) are the ``default`` tenant's: the process's environment, the
deployment's key prefix. A tenant's secrets are the webhook variables of its credentials
(``HUBSPOT_CLIENT_SECRET``, ``CLOSE_WEBHOOK_SIGNATURE_KEY``, ``ZOHO_CHANNEL_ID``/``ZOHO_CHANNEL_TOKEN``,
``KTSYNC_WEBHOOK_SECRET``, ``KLICKTIPP_WEBHOOK_TOKEN``), read from its environment
(:func:`ktsync.config.tenants.tenant_env`) as the default tenant's are from the process's; the
options (``KTSYNC_WEBHOOK_PUBLIC_URL``, the KlickTipp parameter names) stay the deployment's. Its
dedupe keys live under its key prefix (``ktsync@acme:webhook:...``), so one tenant's event ids never
make another's events duplicates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from ktsync.config.model import TenantSpec
from ktsync.config.registry import TenantRefused, TenantView
from ktsync.config.secrets import Keyring
from ktsync.config.tenants import fingerprint, tenant_env
from ktsync.core.dedupe import Deduper
from ktsync.core.errors import KtsyncError
from ktsync.core.tenants import DEFAULT_TENANT, tenant_of
from ktsync.producers.tenancy import stamped
from ktsync.producers.webhooks.payloads import Batch, PayloadError, Problem
from ktsync.producers.webhooks.secrets import WebhookConfigError, WebhookSecrets


@dataclass(frozen=True)
class Hooks:
    """What one tenant's webhook requests are checked and deduplicated with."""

    tenant: str
    secrets: WebhookSecrets
    deduper: Deduper


class TenantHooks(Protocol):
    def get(self, tenant: str) -> Hooks:
        """The tenant's hooks; :class:`TenantRefused` when it is unknown, disabled or unusable."""
        ...


class FixedHooks:
    """Only the ``default`` tenant (a receiver built without a registry): every other is unknown."""

    def __init__(self, default: Hooks) -> None:
        self._default = default

    def get(self, tenant: str) -> Hooks:
        if tenant == DEFAULT_TENANT:
            return self._default
        raise TenantRefused(tenant, f"unknown tenant {tenant!r}")


class ViewSource(Protocol):
    def current(self) -> TenantView: ...


class RegistryHooks:
    """The ``default`` tenant's hooks plus every served tenant's, built on first use and rebuilt when
    the tenant changes (a new secret takes effect within the registry's watch interval)."""

    def __init__(
        self,
        default: Hooks,
        tenants: ViewSource,
        *,
        env: Mapping[str, str],
        deduper_for: Callable[[str], Deduper],
    ) -> None:
        self._default, self._tenants, self._env, self._deduper_for = default, tenants, env, deduper_for
        self._lock = threading.Lock()
        self._built: dict[str, tuple[str, Hooks]] = {}

    def get(self, tenant: str) -> Hooks:
        if tenant == DEFAULT_TENANT:
            return self._default
        spec = self._tenants.current().lookup(tenant)
        assert spec is not None  # lookup returns None only for the default tenant
        mark = fingerprint(spec)
        with self._lock:
            known = self._built.get(tenant)
            if known is not None and known[0] == mark:
                return known[1]
            hooks = Hooks(tenant, tenant_secrets(spec, self._env), self._deduper_for(tenant))
            self._built[tenant] = (mark, hooks)
            return hooks


def tenant_secrets(spec: TenantSpec, env: Mapping[str, str]) -> WebhookSecrets:
    """The tenant's webhook secrets; :class:`TenantRefused` (naming variables, never values) when its
    credentials cannot be revealed or do not make usable webhook secrets."""
    try:
        return WebhookSecrets.from_env(tenant_env(env, spec, Keyring.from_env(env)))
    except (KtsyncError, WebhookConfigError, ValueError) as exc:
        raise TenantRefused(spec.name, f"tenant {spec.name!r} cannot take webhooks: {exc}") from None


def for_tenant(batch: Batch, tenant: str) -> Batch:
    """The batch's messages for ``tenant``: ``"tenant": NAME`` set (``default`` left implicit). A message
    that names another tenant is refused (:class:`PayloadError`, field ``tenant``): one tenant's secret
    never enqueues work into another tenant's account. Pure."""
    problems = [
        Problem(
            index, "tenant", f"the route is tenant {tenant!r}'s, the message names {tenant_of(message)!r}"
        )
        for index, event in enumerate(batch.events)
        for message in event.messages
        if message.get("tenant") is not None and tenant_of(message) != tenant
    ]
    if problems:
        raise PayloadError(problems)
    if tenant == DEFAULT_TENANT:
        return batch
    events = tuple(replace(e, messages=tuple(stamped(m, tenant) for m in e.messages)) for e in batch.events)
    return replace(batch, events=events)
