"""``--tenant``: which tenant an operator command works on (default: ``default``, or ``$KTSYNC_TENANT``).

Every operator command reads and writes only within the chosen tenant's keys (its key prefix, see
:mod:`ktsync.core.tenants`). A disabled tenant can still be inspected and cleaned up; an unknown one is
an error that lists the known tenants.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import click
import redis

from ktsync.config.model import TenantSpec
from ktsync.config.registry import RedisTenantRegistry, TenantView, tenant_view
from ktsync.config.settings import ConfigError, Settings, tenant_settings
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name

TENANT_ENV = "KTSYNC_TENANT"


def tenant_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--tenant NAME`` option (parameter ``tenant``)."""
    return click.option(
        "--tenant",
        default=DEFAULT_TENANT,
        envvar=TENANT_ENV,
        show_default=True,
        metavar="NAME",
        help=f"The tenant (KlickTipp account) to work on; ${TENANT_ENV} sets the default.",
    )(func)


def current_view(settings: Settings, client: redis.Redis | None = None) -> TenantView:
    """Every tenant the deployment knows now: the config file's and the registry's."""
    own = client is None
    client = client or redis.Redis.from_url(settings.redis_url)
    try:
        snapshot = RedisTenantRegistry(client, settings.deployment_prefix).snapshot()
    finally:
        if own:
            client.close()
    return tenant_view(settings.tenants, snapshot)


def find_spec(view: TenantView, tenant: str) -> TenantSpec | None:
    """The tenant's spec, disabled or not (None for ``default``); a ClickException when unknown."""
    if tenant == DEFAULT_TENANT:
        return None
    if not is_tenant_name(tenant):
        raise click.BadParameter(f"{TENANT_RULE}, got {tenant!r}", param_hint="--tenant")
    spec = view.specs.get(tenant)
    if spec is None:
        known = ", ".join([DEFAULT_TENANT, *sorted(view.specs)])
        why = f" (registered but invalid: {view.broken[tenant]})" if tenant in view.broken else ""
        raise click.BadParameter(f"unknown tenant {tenant!r}{why}; known: {known}", param_hint="--tenant")
    return spec


def scoped_settings(
    settings: Settings,
    tenant: str,
    env: Mapping[str, str] | None = None,
    *,
    client: redis.Redis | None = None,
) -> Settings:
    """The settings an operator command uses for ``tenant``: its key prefix, sources and budget."""
    if tenant == DEFAULT_TENANT:
        return settings
    spec = find_spec(current_view(settings, client), tenant)
    assert spec is not None
    try:
        return tenant_settings(settings, spec, os.environ if env is None else env)
    except ConfigError as exc:
        raise click.ClickException(f"tenant {tenant}: {exc}") from None
