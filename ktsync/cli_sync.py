"""`ktsync beat`, `ktsync resync` and `ktsync contact …` (see :mod:`ktsync.cli_contact`): scheduling,
bulk re-checks, one contact's story and its erasure."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ktsync.cli_contact import register as register_contact
from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.tenant_ops import tenant_block, tenant_environ
from ktsync.tenant_scope import tenant_option

RESYNC_CHUNK = 500


def register(main: click.Group, settings: Callable[[], Settings], redis_block: Callable[..., Any]) -> None:
    """Add the commands to the ``ktsync`` group."""

    @main.command()
    @click.option("--loglevel", "-l", default="INFO", show_default=True)
    def beat(loglevel: str) -> None:
        """Run the scheduler: reconciliation every `reconcile.interval` seconds (run exactly one)."""
        from celery import Celery

        from ktsync.config.celery import celery_config
        from ktsync.worker.tasks import RECONCILE_TASK

        conf = settings()
        app = Celery("ktsync-beat", set_as_current=False)
        app.conf.update(celery_config(conf))
        app.conf.beat_schedule = {
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": float(conf.reconcile.interval),
                "options": {"queue": conf.worker.lane_queue(Lane.BULK)},
            }
        }
        schedule_file = _writable_schedule(conf.beat.schedule_path(conf.key_prefix, os.environ))
        app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])

    @main.command()
    @click.option("--source", "-s", required=True, help="Re-check every known contact of this source.")
    @click.option(
        "--from",
        "origin",
        type=click.Choice(["crm", "klicktipp"]),
        default=None,
        help="crm: reload each contact from the CRM's API and sync it; klicktipp: re-read its status only. "
        "Default: crm when the source's CRM API is configured (e.g. HUBSPOT_ACCESS_TOKEN), else klicktipp.",
    )
    @click.option("--dry-run", is_flag=True, help="Only count them.")
    @click.option("--lane", type=click.Choice(["live", "bulk"]), default="bulk", show_default=True,
                  help="The lane the re-checks take (bulk: behind live changes, with flow control).")  # fmt: skip
    @tenant_option
    def resync(source: str, origin: str | None, dry_run: bool, lane: str, tenant: str) -> None:
        """Re-check every contact of a source that ktsync knows (a full resync of that source), of one
        tenant (--tenant).

        Run it with the workers' CRM API variables: they decide whether contacts can be reloaded
        from the CRM (--from crm) or only their status re-read from KlickTipp."""
        from ktsync.core.contract import TASK_NAMES, MessageType
        from ktsync.producers import EnqueueError, Producer
        from ktsync.worker.crm import CrmConfigError
        from ktsync.worker.reconcile import NoCrmApi, crm_api_sources, recheck_messages, resync_origin
        from ktsync.worker.state import RedisStateStore

        base = settings()
        with tenant_block(redis_block, base, tenant) as (client, conf):
            try:
                env = tenant_environ(base, tenant, os.environ, client=client)
                origin = resync_origin(source, origin, crm_api_sources(env))
            except CrmConfigError as exc:
                raise click.ClickException(str(exc)) from None
            except NoCrmApi as exc:
                raise click.ClickException(f"--from crm: {exc}; every contact would be dead-lettered as config. "
                                           "Set it (for the workers too) or use --from klicktipp.") from None  # fmt: skip
            state = RedisStateStore(client, conf.key_prefix)
            contacts = state.oldest(before=float("inf"), limit=10**9, source=source)
            if dry_run:
                click.echo(f"{len(contacts)} contacts of {source} would be re-checked (--from {origin})")
                return
            now, crm_api = time.time(), origin == "crm"
            records = [state.get(source, crm_id) for _, crm_id in contacts]
            wanted = MessageType.CHANGED if crm_api else MessageType.KLICKTIPP_CHANGED
            messages = [
                message
                for r in records
                if r is not None
                for message in recheck_messages(
                    source, r.crm_contact_id, r.klicktipp_id, now, crm_api=crm_api, tenant=tenant
                )
                if message["type"] == wanted
            ]
            with Producer(base, lane=lane, tenant=None if tenant == DEFAULT_TENANT else tenant) as producer:
                for start in range(0, len(messages), RESYNC_CHUNK):
                    chunk = messages[start : start + RESYNC_CHUNK]
                    try:
                        if lane == "bulk":
                            producer.wait_for_room(len(chunk))
                        producer.enqueue_many(chunk)
                    except EnqueueError as exc:
                        raise click.ClickException(f"{exc}; {start} of {len(messages)} re-checks were enqueued "
                                                   "before; running resync again is safe") from None  # fmt: skip
        unknown = len(contacts) - len(messages)  # --from klicktipp: contacts KlickTipp has no id for yet
        skipped = f" ({unknown} without a KlickTipp id skipped)" if unknown else ""
        click.echo(
            f"enqueued {len(messages)} {TASK_NAMES[wanted]} for source {source} (--from {origin}){skipped}"
            + ("" if tenant == DEFAULT_TENANT else f" of tenant {tenant}")
        )

    @main.group()
    def contact() -> None:
        """One contact as ktsync sees it."""

    register_contact(contact, settings, redis_block)


def _writable_schedule(path: Path) -> Path:
    """The beat schedule file, its directory created; a clear error where it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        problem = f"cannot create {path.parent} ({exc.strerror})"
    else:
        target = path if path.exists() else path.parent
        if os.access(target, os.W_OK):
            return path
        problem = f"cannot write {target} (permission denied)"
    raise click.ClickException(
        f"beat schedule file {path}: {problem}; set beat.schedule_file (or KTSYNC_BEAT_SCHEDULE_FILE) "
        "to a writable path"
    )
