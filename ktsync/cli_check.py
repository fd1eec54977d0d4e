"""``ktsync check``: does the configuration still fit the KlickTipp account? No worker, no Redis.

KlickTipp's CRM guide names deleted tags and outdated field mappings as the changes an integration
must live with. ``check`` proves the credentials with one real authenticated call, reads the
account's opt-in processes, data fields and manual tags straight from KlickTipp (never from ktsync's
Redis cache; it only reads, it never writes), and reports, per configuration key, what fits and what
no longer does (:mod:`ktsync.worker.checks` decides, this module only talks to KlickTipp).

Registered in the ``ktsync`` group by ``main.add_command(check)``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ktsync.config.settings import ConfigError, Settings, load_settings
from ktsync.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant_name
from ktsync.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED
from ktsync.tenant_scope import tenant_option

# The KlickTipp client (and requests) is imported when the command runs, so `ktsync --help` stays fast.
if TYPE_CHECKING:
    from ktsync.worker.checks import Account, Finding
    from ktsync.worker.klicktipp.client import KlickTippClient
    from ktsync.worker.klicktipp.errors import KlickTippError


class CheckFailed(Exception):
    """The check could not run to the end: ``line`` says why in one line (the config's own error may
    take several, as in every command), ``findings`` are the same for ``--json``."""

    def __init__(self, line: str, findings: Sequence[Finding]) -> None:
        super().__init__(line)
        self.line, self.findings = line, list(findings)


@click.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The config file to check (default: KTSYNC_CONFIG, else the packaged ktsync.yaml).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help='Machine-readable: {"ok", "problems", "checks"}.')
@tenant_option
def check(config_path: Path | None, as_json: bool, tenant: str) -> None:
    """Compare the configuration with the KlickTipp account: credentials, each source's opt-in
    process, mapped data fields, the CRM id field, and its tags. Starts no worker and needs no Redis;
    only reads from KlickTipp. With --tenant, the tenant's settings against its own account (Redis is
    read only for a tenant of the registry).

    Exit status: 0 everything fits, 1 something does not fit or could not be checked (one line says
    why), 64 usage, 130 interrupted.
    """
    from ktsync.worker.checks import Status, report, summary

    if not is_tenant_name(tenant):
        raise click.BadParameter(f"{TENANT_RULE}, got {tenant!r}", param_hint="--tenant")
    try:
        findings = run_check(os.environ, config_path, tenant=tenant)
    except CheckFailed as exc:
        if as_json:
            click.echo(json.dumps(report(exc.findings), sort_keys=True))
        raise click.ClickException(exc.line) from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(report(findings), sort_keys=True))
    else:
        for finding in findings:
            click.echo(finding.line())
        click.echo(summary(findings))
    if any(f.status is Status.FAIL for f in findings):
        sys.exit(EXIT_FAILED)


def run_check(
    env: Mapping[str, str], config_path: Path | None = None, *, tenant: str = DEFAULT_TENANT
) -> list[Finding]:
    """The credentials' finding, then :func:`compare`'s; ``CheckFailed`` when the check cannot run.
    For a tenant other than ``default``: its settings and its environment (its own credentials)."""
    from ktsync.redis_errors import redact
    from ktsync.worker.checks import Finding, Status, compare
    from ktsync.worker.client_setup import klicktipp_client
    from ktsync.worker.klicktipp.auth import PartnerAuth, auth_from_env
    from ktsync.worker.klicktipp.errors import AuthError, KlickTippError
    from ktsync.worker.klicktipp.errors import KlickTippConfigError as CredentialsError

    settings = _settings(env, config_path)
    first: list[Finding] = []
    if tenant != DEFAULT_TENANT:
        settings, env, about = tenant_scope(settings, env, tenant)
        first.append(about)
    base_url = redact(settings.klicktipp.base_url)
    try:
        auth = auth_from_env(env)
    except CredentialsError as exc:
        raise _failed("credentials", str(exc)) from None
    # Built as the worker builds its client (settings.klicktipp), without its limiter: one check.
    with klicktipp_client(settings, auth) as client:
        try:
            account = read_account(client, settings)
        except AuthError as exc:
            keys = "the partner keys" if isinstance(auth, PartnerAuth) else "KLICKTIPP_PASSWORD"
            whose = "" if tenant == DEFAULT_TENANT else f" (tenant {tenant}'s credentials)"
            raise _failed("credentials", f"KlickTipp refuses them ({exc.operation}: HTTP {exc.status}); "
                                         f"check KLICKTIPP_USERNAME and {keys}{whose}") from None  # fmt: skip
        except KlickTippError as exc:
            raise _failed("klicktipp.base_url", unreachable(base_url, exc), alone=True) from None
    how = "partner keys" if isinstance(auth, PartnerAuth) else "password login"
    accepted = Finding(Status.OK, "credentials", f"KlickTipp at {base_url} accepts them ({how})")
    return [*first, accepted, *compare(settings, account)]


def tenant_scope(
    settings: Settings, env: Mapping[str, str], tenant: str
) -> tuple[Settings, dict[str, str], Finding]:
    """The tenant's settings and environment (as its worker builds them), and the line that names it.
    Redis is read only when the config file does not define the tenant (the registry's)."""
    from ktsync.config.secrets import Keyring, SecretError
    from ktsync.config.settings import tenant_settings
    from ktsync.config.tenants import tenant_env
    from ktsync.redis_errors import REDIS_ERRORS, describe_redis_error
    from ktsync.tenant_scope import current_view
    from ktsync.worker.checks import Finding, Status, tenant_finding

    spec = settings.tenants.get(tenant)
    if spec is None:
        try:
            view = current_view(settings)
        except REDIS_ERRORS as exc:
            why = describe_redis_error(settings.redis_url, exc)
            raise _failed(
                "tenant", f"{tenant} is not in the config file and the registry cannot be read: {why}"
            ) from None
        spec = view.specs.get(tenant)
        if spec is None:
            why = f"registered but invalid: {view.broken[tenant]}" if tenant in view.broken else "unknown"
            known = ", ".join([DEFAULT_TENANT, *sorted(view.specs)])
            raise _failed("tenant", f"{tenant}: {why} (tenants: {known})")
    try:
        scoped = tenant_settings(settings, spec, env)
    except ConfigError as exc:
        raise CheckFailed(str(exc), [Finding(Status.FAIL, key, why) for key, why in exc.problems]) from None
    try:
        own = tenant_env(env, spec, Keyring.from_env(env))
    except SecretError as exc:
        raise _failed("credentials", str(exc)) from None
    about = tenant_finding(tenant, origin=spec.origin, enabled=spec.enabled, key_prefix=scoped.key_prefix)
    return scoped, own, about


def read_account(client: KlickTippClient, settings: Settings) -> Account:
    """Everything :func:`compare` needs, from KlickTipp itself; the first call proves the credentials
    (login, then an authenticated read, as :func:`ktsync.worker.credentials.verify` does)."""
    from ktsync.worker.checks import Account, listids_to_read
    from ktsync.worker.klicktipp.errors import AuthError, KlickTippError, TransportError

    client.login()
    lists = client.list_index()
    fields, tags = client.field_index(), client.tag_index()
    single: dict[str, bool] = {}
    unreadable: dict[str, str] = {}
    for listid in listids_to_read(settings, lists):
        try:
            single[listid] = client.list_get(listid).use_single_optin
        except (AuthError, TransportError):
            raise
        except KlickTippError as exc:  # listed but not readable: a finding of its own, not the end
            unreadable[listid] = _one_line(str(exc))
    return Account(fields=fields, lists=lists, tags=tags, single_optin=single, unreadable=unreadable)


def unreachable(base_url: str, exc: KlickTippError) -> str:
    """``KlickTipp at https://api.klicktipp.com: cannot connect (Connection refused)`` and the like."""
    from ktsync.worker.klicktipp.errors import RequestTimeout, TransportError

    if isinstance(exc, RequestTimeout):
        return f"KlickTipp at {base_url}: no answer in time ({_os_reason(exc) or 'timed out'})"
    if isinstance(exc, TransportError):
        return f"KlickTipp at {base_url}: cannot connect ({_os_reason(exc) or _one_line(exc.message)})"
    return f"KlickTipp at {base_url}: cannot read the account ({_one_line(str(exc))})"


def _settings(env: Mapping[str, str], path: Path | None) -> Settings:
    from ktsync.worker.checks import Finding, Status

    try:
        return load_settings(env, path)
    except ConfigError as exc:
        raise CheckFailed(str(exc), [Finding(Status.FAIL, key, why) for key, why in exc.problems]) from None


def _failed(key: str, message: str, *, alone: bool = False) -> CheckFailed:
    """``alone``: the message names its subject itself (``KlickTipp at …: …``), no ``key:`` before it."""
    from ktsync.worker.checks import Finding, Status

    return CheckFailed(message if alone else f"{key}: {message}", [Finding(Status.FAIL, key, message)])


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words (``Connection refused``, ``Name or service not known``) for a
    transport error: requests and urllib3 wrap the socket's error in ``__cause__`` and ``reason``."""
    queue: list[BaseException] = [exc]
    seen: set[int] = set()
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
