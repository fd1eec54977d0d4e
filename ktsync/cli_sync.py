"""`ktsync beat`, `ktsync resync` and `ktsync contact show`: scheduling, bulk re-checks, one contact's story."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ktsync.config.settings import Settings
from ktsync.lanes import Lane

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
        schedule_file = Path(tempfile.gettempdir()) / f"ktsync-beat-{conf.key_prefix}"
        app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])

    @main.command()
    @click.option("--source", "-s", required=True, help="Re-check every known contact of this source.")
    @click.option(
        "--from",
        "origin",
        type=click.Choice(["crm", "klicktipp"]),
        default="crm",
        show_default=True,
        help="crm: reload each contact from the CRM's API and sync it; klicktipp: re-read its status only.",
    )
    @click.option("--dry-run", is_flag=True, help="Only count them.")
    @click.option("--lane", type=click.Choice(["live", "bulk"]), default="bulk", show_default=True,
                  help="The lane the re-checks take (bulk: behind live changes, with flow control).")  # fmt: skip
    def resync(source: str, origin: str, dry_run: bool, lane: str) -> None:
        """Re-check every contact of a source that ktsync knows (a full resync of that source)."""
        from ktsync.contract import TASK_NAMES, MessageType
        from ktsync.producers import Producer
        from ktsync.worker.reconcile import recheck_messages
        from ktsync.worker.state import RedisStateStore

        with redis_block(settings()) as (client, conf):
            state = RedisStateStore(client, conf.key_prefix)
            contacts = state.oldest(before=float("inf"), limit=10**9, source=source)
            if dry_run:
                click.echo(f"{len(contacts)} contacts of {source} would be re-checked")
                return
            now, crm_api = time.time(), origin == "crm"
            records = [state.get(source, crm_id) for _, crm_id in contacts]
            wanted = MessageType.CHANGED if crm_api else MessageType.KLICKTIPP_CHANGED
            messages = [
                message
                for r in records
                if r is not None
                for message in recheck_messages(
                    source, r.crm_contact_id, r.klicktipp_id, now, crm_api=crm_api
                )
                if message["type"] == wanted
            ]
            with Producer(conf, lane=lane) as producer:
                for start in range(0, len(messages), RESYNC_CHUNK):
                    chunk = messages[start : start + RESYNC_CHUNK]
                    if lane == "bulk":
                        producer.wait_for_room(len(chunk))
                    producer.enqueue_many(chunk)
        click.echo(f"enqueued {len(messages)} {TASK_NAMES[wanted]} for source {source}")

    @main.group()
    def contact() -> None:
        """One contact as ktsync sees it."""

    @contact.command("show")
    @click.argument("who")
    @click.option("--source", "-s", help="The CRM source (needed when WHO is a CRM id used by several).")
    @click.option("--json", "as_json", is_flag=True)
    def contact_show(who: str, source: str | None, as_json: bool) -> None:
        """WHO: a CRM contact id or an e-mail address. Shows the state and the timeline, newest first:
        events received, KlickTipp calls with their results, outcomes, dead letters and replays."""
        from ktsync.worker.deadletter import Filter, RedisDeadLetterStore
        from ktsync.worker.state import RedisStateStore
        from ktsync.worker.telemetry import read_timeline

        with redis_block(settings()) as (client, conf):
            state = RedisStateStore(client, conf.key_prefix)
            record = (
                state.find(email=who.lower()) if "@" in who else _by_crm_id(client, conf, state, who, source)
            )
            if record is None:
                raise click.ClickException(f"ktsync knows no contact {who!r}")
            timeline = read_timeline(client, conf.key_prefix, record.source, record.crm_contact_id)
            letters = [
                letter.to_dict()
                for letter in RedisDeadLetterStore(client, conf.key_prefix).list(
                    Filter(source=record.source), limit=10**6
                )
                if str(letter.message.get("crm_contact_id", "")) == record.crm_contact_id
            ]
        report = {"state": json.loads(record.to_json()), "dead_letters": letters, "timeline": timeline}
        if as_json:
            click.echo(json.dumps(report, sort_keys=True, default=str))
            return
        _print_contact(report)


def _by_crm_id(client: Any, conf: Settings, state: Any, crm_id: str, source: str | None) -> Any:
    if source:
        return state.get(source, crm_id)
    found = [
        key.decode() for key in client.scan_iter(match=f"{conf.key_prefix}:contact:*:{crm_id}", count=1000)
    ]
    sources = sorted({key[len(f"{conf.key_prefix}:contact:") : -len(f":{crm_id}")] for key in found})
    if len(sources) > 1:
        raise click.ClickException(f"CRM id {crm_id!r} exists in {', '.join(sources)}: add --source")
    return state.get(sources[0], crm_id) if sources else None


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _print_contact(report: dict[str, Any]) -> None:
    s = report["state"]
    deleted = f", deleted {_when(s['deleted_at'])}" if s.get("deleted_at") else ""
    click.echo(f"{s['source']}/{s['crm_contact_id']}: KlickTipp id {s.get('klicktipp_id') or '-'}, "
               f"{s.get('email') or '-'}, {s.get('subscription')}, tags {', '.join(s.get('tags') or []) or '-'}{deleted}")  # fmt: skip
    for letter in report["dead_letters"]:
        click.echo(f"  dead letter {letter['id']}: {letter['reason']} (replays {letter['replays']})")
    for entry in report["timeline"]:
        details = {k: v for k, v in entry.items() if k not in ("at", "kind") and v not in (None, "")}
        click.echo(f"  {_when(entry['at'])}  {entry['kind']:<11} {json.dumps(details, sort_keys=True)}")
