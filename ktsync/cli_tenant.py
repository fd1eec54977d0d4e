"""``ktsync tenant``: add, change, list, show, disable, enable and remove tenants without a restart.

Every command is a thin shell over :mod:`ktsync.tenant_admin` on the deployment's Redis registry;
errors are one line (exit status 1), never a traceback. Registered by ``register(main, _settings, _redis)``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ktsync.config.model import ConfigError, Settings


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ConfigError):  # one line per command: the keys, each with why
        where = exc.args[0].split(":\n", 1)[0]
        return f"{where}: " + "; ".join(f"{key}: {reason}" for key, reason in exc.problems)
    return " ".join(str(exc).split())


def _read(path: Path) -> object:
    from ktsync.tenant_admin import read_document

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    return read_document(text, str(path))


def register(main: click.Group, settings: Callable[[], Settings], redis_block: Callable[..., Any]) -> None:
    """Add the ``tenant`` group to the ``ktsync`` group."""

    def run(action: Callable[..., Any]) -> Any:
        """``action(settings, registry, client)`` with its errors as one line."""
        from ktsync.config.registry import RedisTenantRegistry
        from ktsync.config.secrets import SecretError
        from ktsync.tenant_admin import TenantAdminError

        with redis_block(settings()) as (client, conf):
            try:
                return action(conf, RedisTenantRegistry(client, conf.deployment_prefix), client)
            except (TenantAdminError, ConfigError, SecretError) as exc:
                raise click.ClickException(_one_line(exc)) from None

    file_option = click.option(
        "--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
        help="The tenant's document (YAML or JSON).",
    )  # fmt: skip

    @main.group()
    def tenant() -> None:
        """Tenants (KlickTipp accounts) of this deployment: changes reach running workers within seconds."""

    @tenant.command("add")
    @click.argument("name")
    @file_option
    def add(name: str, path: Path | None) -> None:
        """Register tenant NAME from FILE (plain secrets are stored encrypted with $KTSYNC_SECRET_KEY)."""
        from ktsync.tenant_admin import add_tenant

        if path is None:
            raise click.UsageError("--file FILE is required: the tenant's document")
        spec = run(lambda conf, registry, _: add_tenant(conf, registry, name, _read(path), os.environ))
        click.echo(f"added tenant {spec.name}")

    @tenant.command("update")
    @click.argument("name")
    @file_option
    def update(name: str, path: Path | None) -> None:
        """Replace tenant NAME's document with FILE; without --file, encrypt its stored secrets again
        with the first key of $KTSYNC_SECRET_KEY (key rotation)."""
        from ktsync.tenant_admin import update_tenant

        def action(conf: Settings, registry: Any, _: Any) -> Any:
            return update_tenant(conf, registry, name, None if path is None else _read(path), os.environ)

        spec = run(action)
        click.echo(f"updated tenant {spec.name}" + ("" if path else " (secrets encrypted again)"))

    @tenant.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def list_(as_json: bool) -> None:
        """Every tenant: the config file's and the registry's, enabled or not."""
        from ktsync.tenant_admin import list_tenants

        rows = run(lambda conf, registry, _: list_tenants(conf, registry))
        if as_json:
            click.echo(json.dumps([row.to_dict() for row in rows], sort_keys=True))
            return
        for row in rows:
            state = "enabled" if row.enabled else "disabled"
            rate = "-" if row.per_second is None else f"{row.per_second:g}/s"
            problem = f"  {row.problem}" if row.problem else ""
            click.echo(f"{row.name:<20} {state:<8} rate {rate:<8} {row.origin}{problem}")

    @tenant.command("show")
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def show(name: str, as_json: bool) -> None:
        """Tenant NAME's document; secrets only as where they come from, never their values."""
        from ktsync.tenant_admin import show_tenant

        shown = run(lambda conf, registry, _: show_tenant(conf, registry, name))
        import yaml

        click.echo(json.dumps(shown, sort_keys=True) if as_json else yaml.safe_dump(shown, sort_keys=False))

    for command, enabled in (("disable", False), ("enable", True)):

        @tenant.command(command, help=f"{command.capitalize()} tenant NAME (config-file tenants too).")
        @click.argument("name")
        def toggle(name: str, enabled: bool = enabled, command: str = command) -> None:
            from ktsync.tenant_admin import set_enabled

            run(lambda conf, registry, _: set_enabled(conf, registry, name, enabled))
            click.echo(f"{command}d tenant {name}")

    @tenant.command("remove")
    @click.argument("name")
    @click.option(
        "--purge", is_flag=True, help="Also delete every key, parked retry and deferred task of it."
    )
    @click.option("--yes", is_flag=True, help="Do not ask before purging.")
    def remove(name: str, purge: bool, yes: bool) -> None:
        """Remove tenant NAME from the registry; with --purge, every trace of it in Redis."""
        from ktsync.tenant_admin import remove_tenant

        if purge and not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("--purge deletes the tenant's data: confirm with --yes")
            click.confirm(f"delete every key of tenant {name}?", abort=True)
        purged = run(lambda conf, registry, client: remove_tenant(conf, registry, name, purge=purge,
                                                                  client=client))  # fmt: skip
        if purged is None:
            click.echo(f"removed tenant {name} (its keys are kept: --purge deletes them)")
        else:
            click.echo(f"removed tenant {name}: purged {purged.keys} key(s), {purged.parked} parked "
                       f"retr{'y' if purged.parked == 1 else 'ies'}, {purged.deferred} deferred task(s)")  # fmt: skip

    @tenant.command("key")
    def key() -> None:
        """Print a new key for $KTSYNC_SECRET_KEY (put it first to rotate; keep the old one after it)."""
        from ktsync.config.secrets import new_key

        click.echo(new_key())
