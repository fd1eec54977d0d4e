"""The ``ktsync`` command line: worker, enqueue, status, fake-klicktipp and demo.

Commands and options are a public contract (scripts rely on them): change them only compatibly.
Heavy imports happen inside the commands so that ``ktsync --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import click
import redis

from ktsync.cli_check import check
from ktsync.cli_console import register as register_console
from ktsync.cli_contract import register as register_contract
from ktsync.cli_dlq import register as register_dlq
from ktsync.cli_ops import log_format_option
from ktsync.cli_ops import register as register_ops
from ktsync.cli_sync import register as register_sync
from ktsync.cli_tenant import register as register_tenant
from ktsync.cli_webhooks import register as register_webhooks
from ktsync.config.settings import ConfigError, Settings, load_settings
from ktsync.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_REJECTED, EXIT_USAGE  # the public statuses
from ktsync.redis_errors import REDIS_ERRORS, configured_redis_url, describe_redis_error
from ktsync.tenant_scope import tenant_option


class _UsageError(click.UsageError):
    """A click usage error, shown as click shows it, with :data:`EXIT_USAGE` as the exit status."""

    exit_code = EXIT_USAGE

    def __init__(self, original: click.UsageError) -> None:
        super().__init__(original.message, original.ctx)
        self.original = original

    def show(self, file: IO[Any] | None = None) -> None:
        self.original.show(file)


class KtsyncGroup(click.Group):
    """The ``ktsync`` group: usage errors of every sub-command exit with :data:`EXIT_USAGE`."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise exc if isinstance(exc, _UsageError) else _UsageError(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise exc if isinstance(exc, _UsageError) else _UsageError(exc) from None
        except REDIS_ERRORS as exc:  # a wrong Redis URL or DB index: one line, never a traceback
            raise click.ClickException(describe_redis_error(configured_redis_url(), exc)) from None


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=KtsyncGroup)
@click.version_option(package_name="ktsync")
def main() -> None:
    """Keep CRM contacts in sync with KlickTipp through a Celery + Redis task queue."""


@main.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 512), help="Tasks at once (default: config).")
@click.option(
    "--pool",
    "-P",
    type=click.Choice(["threads", "prefork", "solo", "gevent", "eventlet"]),
    help="Celery execution pool (default: config, threads).",
)
@click.option("--loglevel", "-l", default="INFO", show_default=True, help="Log level.")
@click.option("--hostname", "-n", default=None, help="Worker node name (default: ktsync@<host>).")
@click.option("--quiet", "-q", is_flag=True, help="No start-up banner.")
@log_format_option
def worker(
    concurrency: int | None,
    pool: str | None,
    loglevel: str,
    hostname: str | None,
    quiet: bool,
    log_format: str,
) -> None:
    """Run a Celery worker in the foreground (checks the account first)."""
    from ktsync.logs import configure_logging, take_over_celery_logging
    from ktsync.worker.celery_app import create_app
    from ktsync.worker.preflight import PreflightError, startup_check

    if log_format == "json":  # one JSON object per line from the first record on, so no banner either
        configure_logging(log_format, loglevel)
        take_over_celery_logging(log_format)
        quiet = True
    from ktsync.worker.crm.base import CrmConfigError
    from ktsync.worker.klicktipp.errors import AuthError, KlickTippError
    from ktsync.worker.klicktipp.errors import KlickTippConfigError as CredentialsError

    settings = _settings()
    app = create_app(settings)
    try:
        runtime = app.ktsync_runtime.get()
        startup_check(settings, runtime.klicktipp.reference, runtime.klicktipp.credential)
    except (PreflightError, CrmConfigError, CredentialsError) as exc:
        raise click.ClickException(str(exc)) from None
    except AuthError as exc:
        raise click.ClickException(
            f"KlickTipp refuses this worker's credentials ({exc.operation}: HTTP {exc.status}); "
            "check KLICKTIPP_USERNAME and KLICKTIPP_PASSWORD (or the partner keys). Not starting."
        ) from None
    except KlickTippError as exc:
        raise click.ClickException(f"cannot read the KlickTipp account ({exc.reason}): {exc}") from None
    argv = [
        *(["--quiet"] if quiet else []),
        "worker",
        f"--concurrency={concurrency or settings.worker.concurrency}",
        f"--pool={pool or settings.worker.pool}",
        f"--loglevel={loglevel}",
        f"--queues={','.join(settings.worker.consumed_queues)}",  # live first (see config/celery.py)
        f"--hostname={hostname or 'ktsync@%h'}",
        "--without-mingle",
        "--task-events",
    ]
    app.worker_main(argv)


def lane_option(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--lane",
        type=click.Choice(["live", "bulk"]),
        default=default,
        show_default=True,
        help="live: changes someone waits for (taken first); bulk: imports, resyncs, replays.",
    )


def start_line_option(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option("--start-line", type=click.IntRange(1), default=1, show_default=True,
                        help=f"Skip the lines before this one (resume an interrupted {what}).")  # fmt: skip


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print, per contact, the KlickTipp calls it would cause and why; enqueue and write nothing.",
)
@lane_option("live")
@start_line_option("enqueue")
@tenant_option
def enqueue(file: IO[str], dry_run: bool, lane: str, start_line: int, tenant: str) -> None:
    """Enqueue the valid JSON lines of FILE (- for stdin); list every rejected line and why.

    --tenant NAME (or $KTSYNC_TENANT) sets the tenant of every line that names none and rejects a
    line naming another; without it, each line names its own (absent: default). An unknown or
    disabled tenant is refused, with the reason.

    Stopped half-way (Redis gone), it says how far it got and the --start-line that goes on from
    there; running it again from the start is safe as well (contacts already synced cost no calls).

    Exit status: 0 all accepted, 2 some rejected, 1 stopped (not everything enqueued), 130 interrupted.
    """
    from ktsync.producers import EnqueueError, Producer
    from ktsync.producers.imports import ImportReport, jsonl_messages, run_import

    settings = _settings()
    if dry_run:
        _dry_run(file, settings, tenant)
        return
    report = ImportReport(keep=None)
    bound = _bound_tenant(tenant)
    try:
        with Producer(settings, lane=lane, tenant=bound) as producer:
            _check_tenant(producer)
            room = producer.wait_for_room if lane == "bulk" else None
            run_import(jsonl_messages(file, None, bound or "default"), producer, room=room, start_line=start_line,
                       report=report, admit=producer.admit)  # fmt: skip
    except (EnqueueError, KeyboardInterrupt) as exc:
        _stopped(exc, report, f"ktsync enqueue {_quoted(file.name)}")
    _print_rejections(report)
    click.echo(f"enqueued {report.enqueued}, rejected {report.rejected}")
    if report.rejected:
        sys.exit(EXIT_REJECTED)


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", "-s", required=True, help="The CRM these contacts come from (e.g. hubspot).")
@click.option(
    "--format", "fmt", type=click.Choice(["auto", "jsonl", "csv"]), default="auto", show_default=True
)
@click.option("--id-column", default="id", show_default=True, help="CSV: column with the CRM contact id.")
@click.option(
    "--email-column", default="email", show_default=True, help="CSV: column with the e-mail address."
)
@click.option("--sms-column", help="CSV: column with the SMS number.")
@click.option("--occurred-at-column", help="CSV: column with the change time (default: the import time).")
@click.option("--list-column", multiple=True, help="CSV: a column holding a list (repeatable).")
@click.option("--list-separator", default=";", show_default=True)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=PROPERTY",
    help="CSV: import only these columns, renamed.",
)
@start_line_option("import")
@lane_option("bulk")
@tenant_option
def import_file(path: Path, source: str, fmt: str, id_column: str, email_column: str, sms_column: str | None,
                occurred_at_column: str | None, list_column: tuple[str, ...], list_separator: str,
                mapping: tuple[str, ...], start_line: int, lane: str, tenant: str) -> None:  # fmt: skip
    """Import contacts from a JSON-lines or CSV file, with progress and a summary of rejects.

    --tenant NAME (or $KTSYNC_TENANT): whose contacts these are, set on every line that names none (a
    line naming another is rejected); the bulk backlog it waits for is that tenant's own.

    In the bulk lane the import waits while `bulk.max_backlog` messages wait already, and shows an
    ETA from the account's budget and the calls a contact costs. Interrupted or stopped (Redis gone),
    it says how far it got and the --start-line that goes on from there; running it again is safe
    (contacts already synced cost no KlickTipp calls).

    Exit status: 0 all accepted, 2 some rejected, 1 stopped (not everything enqueued), 130 interrupted.
    """
    from ktsync.producers import EnqueueError, Producer
    from ktsync.producers.imports import CsvLayout, ImportReport, csv_messages, jsonl_messages, run_import

    bound = _bound_tenant(tenant)
    columns = dict(_pair(item) for item in mapping)
    layout = CsvLayout(source, id_column, email_column, sms_column, occurred_at_column, frozenset(list_column),
                       list_separator, columns, bound or "default")  # fmt: skip
    kind = fmt if fmt != "auto" else ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    settings, total = _settings(), _count_lines(path)
    report = ImportReport()
    with (
        path.open(encoding="utf-8-sig", newline="") as stream,
        Producer(settings, lane=lane, tenant=bound) as producer,
    ):
        progress = ImportProgress(settings, total)
        try:
            _check_tenant(producer)
            if kind == "csv":
                messages = csv_messages(stream, layout)
            else:
                messages = jsonl_messages(stream, source, layout.tenant)
            with click.progressbar(length=total, label=f"importing {path.name}", file=sys.stderr,
                                   show_eta=False, item_show_func=progress.describe) as bar:  # fmt: skip
                progress.bar = bar
                room = progress.room(producer) if lane == "bulk" else None
                run_import(messages, producer, progress.advance, room=room, start_line=start_line, report=report,
                           chunk_size=min(500, settings.bulk.max_backlog), admit=producer.admit)  # fmt: skip
        except (EnqueueError, redis.RedisError, KeyboardInterrupt) as exc:
            click.echo("", err=True)  # below the progress bar
            _stopped(exc, report, f"ktsync import {_quoted(str(path))} ... (the same options)", grouped=True)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _print_rejections(report, grouped=True)
    skipped = f", skipped {report.skipped}" if report.skipped else ""
    click.echo(f"read {report.read}, enqueued {report.enqueued}, rejected {report.rejected}{skipped}")
    if report.rejected:
        sys.exit(EXIT_REJECTED)


def _bound_tenant(tenant: str) -> str | None:
    """The tenant ``--tenant`` binds the producer to; None when neither the option nor $KTSYNC_TENANT
    was given (each message names its own, absent: default)."""
    from ktsync.core.tenants import TENANT_RULE, is_tenant_name

    source = click.get_current_context().get_parameter_source("tenant")
    if source in (click.core.ParameterSource.DEFAULT, None):
        return None
    if not is_tenant_name(tenant):
        raise click.BadParameter(f"{TENANT_RULE}, got {tenant!r}", param_hint="--tenant")
    return tenant


def _check_tenant(producer: Any) -> None:
    """Refuse an unknown or disabled --tenant once, up front, with the reason."""
    why = producer.refusal()
    if why is not None:
        raise click.BadParameter(why, param_hint="--tenant")


def _print_rejections(report: Any, *, grouped: bool = False) -> None:
    for line, reason in report.first_rejections:
        click.echo(f"line {line}: {reason}", err=True)
    if grouped:
        for (fld, reason), count in report.reasons.most_common():
            click.echo(f"{count:>8} rejected: {fld}: {reason}", err=True)


def _stopped(exc: BaseException, report: Any, command: str, *, grouped: bool = False) -> NoReturn:
    """The rejections so far, why the run stopped (``exc``), how far it got and how to go on; exit with
    :data:`EXIT_INTERRUPTED` after Ctrl-C, else :data:`EXIT_FAILED` (no traceback)."""
    from ktsync.producers.imports import stopped_summary

    interrupted = isinstance(exc, KeyboardInterrupt)
    _print_rejections(report, grouped=grouped)
    click.echo("interrupted" if interrupted else " ".join(f"stopped: {exc}".split()), err=True)
    click.echo(stopped_summary(report), err=True)
    if report.resume_at == 1:
        click.echo(f"to go on: run it again: {command}", err=True)
    else:
        click.echo(f"to go on: {command} --start-line {report.resume_at} (running it again from the start "
                   "is safe too: contacts already synced cost no KlickTipp calls)", err=True)  # fmt: skip
    sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_FAILED)


def _quoted(name: str) -> str:
    import shlex

    return "-" if name == "<stdin>" else shlex.quote(name)


class ImportProgress:
    """The import's progress bar: lines read, the bulk backlog, and an ETA from the budget."""

    def __init__(self, settings: Settings, total: int) -> None:
        self.settings, self.total = settings, total
        self.bar: Any = None
        self.line = 0
        self.backlog = 0
        self.waiting = False
        self._calls_per_contact: float | None = None

    def advance(self, line: int) -> None:
        if self.bar is not None:
            self.bar.update(line - self.line)
        self.line = line

    def room(self, producer: Any) -> Callable[[int], object]:
        def wait(needed: int) -> object:
            def full(backlog: int) -> None:
                self.backlog, self.waiting = backlog, True
                if self.bar is not None:
                    self.bar.render_progress()

            self.backlog = producer.wait_for_room(needed, full)
            self.waiting = False
            return self.backlog

        return wait

    def describe(self, _item: object) -> str:
        from ktsync.eta import eta_text

        remaining = max(0, self.total - self.line) + self.backlog
        state = " (waiting: backlog full)" if self.waiting else ""
        return (
            f"backlog {self.backlog}{state}, {eta_text(remaining, self.settings, self.calls_per_contact())}"
        )

    def calls_per_contact(self) -> float | None:
        if self._calls_per_contact is None:
            from ktsync.eta import observed_calls_per_contact

            self._calls_per_contact = observed_calls_per_contact(self.settings)
        return self._calls_per_contact


def _pair(item: str) -> tuple[str, str]:
    column, sep, prop = item.partition("=")
    if not sep or not column or not prop:
        raise click.BadParameter(f"{item!r}: use COLUMN=PROPERTY", param_hint="--map")
    return column, prop


def _count_lines(path: Path) -> int:
    with path.open("rb") as raw:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: raw.read(1 << 20), b""))


def _dry_run(file: IO[str], settings: Settings, tenant: str = "default") -> None:
    """The plan of each line, on the tenant's account, with the tenant's settings and credentials."""
    from ktsync.config.registry import TenantRefused
    from ktsync.config.secrets import SecretError
    from ktsync.dryrun import dry_run
    from ktsync.worker.crm.base import CrmConfigError
    from ktsync.worker.klicktipp.errors import KlickTippConfigError as CredentialsError
    from ktsync.worker.klicktipp.errors import KlickTippError
    from ktsync.worker.runtime import Tenants

    tenants = Tenants(settings, os.environ)
    try:
        runtime = tenants.get(tenant)
    except (CredentialsError, CrmConfigError, TenantRefused, SecretError, ConfigError) as exc:
        tenants.close()
        raise click.ClickException(str(exc)) from None
    try:
        rejected = dry_run(file, runtime, click.echo)
    except KlickTippError as exc:  # the plan needs the account's reference data and contacts
        raise click.ClickException(f"cannot read the KlickTipp account ({exc.reason}): {exc}") from None
    finally:
        tenants.close()
    if rejected:
        sys.exit(EXIT_REJECTED)


@main.group()
def review() -> None:
    """KlickTipp deletion requests kept for a person to decide (policy "review")."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@tenant_option
def review_list(as_json: bool, tenant: str) -> None:
    """Show the deletion requests waiting for review, oldest first."""
    from ktsync.tenant_ops import tenant_block
    from ktsync.worker.review import RedisReviewList

    with tenant_block(_redis, _settings(), tenant) as (client, settings):
        items = RedisReviewList(client, settings.key_prefix).list()
    if as_json:
        click.echo(json.dumps(items, sort_keys=True))
        return
    if not items:
        click.echo("no deletion requests waiting for review")
    for item in items:
        who = f"{item.get('source') or '?'}/{item.get('crm_contact_id') or '?'}"
        click.echo(
            f"{item['id']}: {item.get('email') or '-'} (KlickTipp {item.get('klicktipp_id') or '-'}, CRM {who})"
        )


@review.command("done")
@click.argument("request_id")
@tenant_option
def review_done(request_id: str, tenant: str) -> None:
    """Remove a request from the review list once it has been handled."""
    from ktsync.tenant_ops import tenant_block
    from ktsync.worker.review import RedisReviewList

    with tenant_block(_redis, _settings(), tenant) as (client, settings):
        removed = RedisReviewList(client, settings.key_prefix).remove(request_id)
    if not removed:
        raise click.ClickException(f"no deletion request {request_id!r} in the review list")
    click.echo(f"removed {request_id}")


@contextmanager
def _redis(settings: Settings) -> Iterator[tuple[redis.Redis, Settings]]:
    """A client of the settings' Redis, closed afterwards; its errors become one line in :class:`KtsyncGroup`."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        yield client, settings
    finally:
        client.close()


@main.command("fake-klicktipp")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--seed", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Seed JSON file.")
@click.option(
    "--profile",
    type=click.Choice(["documented", "recorded"]),  # fake_klicktipp.options.PROFILES, imported lazily
    default="documented",
    show_default=True,
    help="Answer as KlickTipp's spec documents, or with the bodies recorded from the real API; "
    "resets return to it.",
)
def fake_klicktipp(host: str, port: int, seed: Path | None, profile: str) -> None:
    """Serve the fake KlickTipp (for demos, tests and benchmarks; never production)."""
    from fake_klicktipp.options import as_profile
    from fake_klicktipp.server import serve

    serve(host=host, port=port, seed=seed, profile=as_profile(profile))


@main.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL contacts (default: examples/contacts.jsonl).",
)
@click.option("--concurrency", type=click.IntRange(1, 512), default=8, show_default=True)
def demo(path: Path | None, concurrency: int) -> None:
    """Run everything end to end on embedded defaults and show what happened."""
    from ktsync.demo import run_demo

    sys.exit(run_demo(path, concurrency=concurrency))


register_dlq(main, _settings, _redis)
main.add_command(check)
register_ops(main, _settings, _redis)
register_sync(main, _settings, _redis)
register_tenant(main, _settings, _redis)
register_webhooks(main, _settings)
register_console(main, _settings)
register_contract(main)
