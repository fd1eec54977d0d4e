"""`ktsync dlq`: read the dead-letter queue grouped by cause, fix, replay, purge."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ktsync.config.settings import Settings
from ktsync.letters import Selection, SelectionError, purge_letters, refetch_for, replay_letters, select
from ktsync.letters import parse_since as letters_parse_since
from ktsync.tenant_ops import tenant_block, tenant_environ
from ktsync.tenant_scope import tenant_option
from ktsync.worker.deadletter import DeadLetter, Filter, RedisDeadLetterStore

if TYPE_CHECKING:
    from ktsync.core.replay import Refetch


def parse_since(value: str | None, now: float) -> float | None:
    """``2h``, ``30m``, ``1d`` ago, or an ISO 8601 time; None when not given."""
    try:
        return letters_parse_since(value, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def filters(func: Callable[..., Any]) -> Callable[..., Any]:
    """The shared selection options: --reason, --code, --source, --since."""
    for option in reversed(
        [
            click.option("--reason", help="Only this reason (e.g. validation, conflict, auth)."),
            click.option("--code", type=int, help="Only this KlickTipp error code (e.g. 8, 507)."),
            click.option("--source", help="Only messages from this source."),
            click.option("--since", help="Only failures since: a duration (2h, 1d) or an ISO time."),
        ]
    ):
        func = option(func)
    return func


def _filter(reason: str | None, code: int | None, source: str | None, since: str | None) -> Filter:
    return Filter(reason=reason, code=code, source=source, since=parse_since(since, time.time()))


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def register(main: click.Group, settings: Callable[[], Settings], redis_block: Callable[..., Any]) -> None:
    """Add the ``dlq`` group to the ``ktsync`` command."""

    @main.group()
    def dlq() -> None:
        """The dead-letter queue: tasks that failed for good, with payload and reason."""

    @dlq.command("list")
    @filters
    @click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @tenant_option
    def list_(reason: str | None, code: int | None, source: str | None, since: str | None, limit: int,
              as_json: bool, tenant: str) -> None:  # fmt: skip
        """Dead letters, newest first."""
        with tenant_block(redis_block, settings(), tenant) as (client, conf):
            letters = _store(client, conf).list(_filter(reason, code, source, since), limit)
        if as_json:
            click.echo(json.dumps([letter.to_dict() for letter in letters], sort_keys=True))
            return
        for letter in letters:
            code_text = f" {letter.code}" if letter.code is not None else ""
            who = letter.message.get("crm_contact_id") or letter.message.get("email") or "-"
            summary = str(letter.error.get("message", ""))[:100]
            click.echo(
                f"{letter.id}  {_when(letter.last_failed_at)}  {letter.reason}{code_text}  {letter.source or '-'}/{who}  {summary}"
            )
        click.echo(f"{len(letters)} shown", err=True)

    @dlq.command()
    @click.argument("letter_id")
    @click.option("--message", "message_only", is_flag=True,
                  help="Only the stored message, as one JSON line (to edit and `ktsync enqueue` again).")  # fmt: skip
    @tenant_option
    def show(letter_id: str, message_only: bool, tenant: str) -> None:
        """One dead letter in full: message, error, attempts, times, host, replays."""
        with tenant_block(redis_block, settings(), tenant) as (client, conf):
            letter = _store(client, conf).get(letter_id)
        if letter is None:
            raise click.ClickException(f"no dead letter {letter_id!r}")
        if message_only:
            click.echo(json.dumps(letter.message, sort_keys=True, ensure_ascii=False))
            return
        click.echo(json.dumps(letter.to_dict(), indent=2, sort_keys=True))

    @dlq.command()
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @tenant_option
    def stats(as_json: bool, tenant: str) -> None:
        """Dead letters grouped by reason and KlickTipp code, each with its meaning and the fix."""
        from ktsync.worker.deadletter.triage import group_census

        with tenant_block(redis_block, settings(), tenant) as (client, conf):
            store = _store(client, conf)
            groups, evicted = group_census(store.census(), store.get), store.evicted()
        if as_json:
            click.echo(
                json.dumps({"groups": [g.__dict__ for g in groups], "evicted": evicted}, sort_keys=True)
            )
            return
        for g in groups:
            code_text = f" (code {g.code})" if g.code is not None else ""
            click.echo(f"{g.count:>6}  {g.reason}{code_text}: {g.meaning}")
            click.echo(f"        fix: {g.fix}")
        click.echo(f"total {sum(g.count for g in groups)}, evicted so far {evicted}")

    @dlq.command()
    @click.argument("letter_ids", nargs=-1)
    @click.option("--all", "everything", is_flag=True, help="Every dead letter.")
    @filters
    @click.option("--dry-run", is_flag=True, help="Show what would be replayed.")
    @click.option("--refetch", is_flag=True,
                  help="Reload each contact from its CRM's API and sync what the CRM has now, instead of "
                  "resending the stored message (after fixing a value in the CRM).")  # fmt: skip
    @click.option("--lane", type=click.Choice(["live", "bulk"]), default="bulk", show_default=True,
                  help="The lane the replayed tasks take (bulk: behind live changes, with flow control).")  # fmt: skip
    @tenant_option
    def replay(letter_ids: tuple[str, ...], everything: bool, reason: str | None, code: int | None,
               source: str | None, since: str | None, dry_run: bool, refetch: bool, lane: str,
               tenant: str) -> None:  # fmt: skip
        """Enqueue the original messages again (through the rate limiter; safe to repeat).

        An entry leaves the queue only when its replayed task has succeeded. A plain replay resends
        the stored message, old values included; --refetch reloads the contact from the CRM's API
        (run it with the workers' CRM variables, e.g. HUBSPOT_ACCESS_TOKEN). A letter that cannot be
        replayed so is refused, with why, and stays.
        """
        from ktsync.producers import EnqueueError

        base = settings()
        with tenant_block(redis_block, base, tenant) as (client, conf):
            how = _refetch(tenant_environ(base, tenant, os.environ, client=client)) if refetch else None
            store = _store(client, conf)
            letters = _select(store, letter_ids, everything, _filter(reason, code, source, since))
            try:
                results = replay_letters(
                    base, tenant, store, letters, dry_run=dry_run, refetch=how, lane=lane
                )
            except EnqueueError as exc:
                raise click.ClickException(f"{exc}; replaying again is safe: a letter stays until its "
                                           "replay succeeds") from None  # fmt: skip
        verb = "refetch" if refetch else "replay"
        for result in results:
            done = f"would {verb}" if dry_run else f"{verb}ed as task {result.task_id}"
            click.echo(f"{result.letter_id}: {f'refused: {result.problem}' if result.problem else done}")
        refused = sum(1 for r in results if r.problem)
        kept = " (they stay in the dead-letter queue)" if refused else ""
        click.echo(f"{sum(1 for r in results if r.task_id)} replayed, {refused} refused{kept}")

    @dlq.command()
    @click.argument("letter_ids", nargs=-1)
    @click.option("--all", "everything", is_flag=True, help="Every dead letter.")
    @filters
    @click.option("--dry-run", is_flag=True, help="Show what would be purged.")
    @tenant_option
    def purge(letter_ids: tuple[str, ...], everything: bool, reason: str | None, code: int | None,
              source: str | None, since: str | None, dry_run: bool, tenant: str) -> None:  # fmt: skip
        """Delete dead letters for good (after fixing their cause elsewhere)."""
        with tenant_block(redis_block, settings(), tenant) as (client, conf):
            store = _store(client, conf)
            letters = _select(store, letter_ids, everything, _filter(reason, code, source, since))
            if not dry_run:
                purge_letters(store, letters)
            for letter in letters:
                click.echo(f"{letter.id}: {'would purge' if dry_run else 'purged'}")
        click.echo(f"{len(letters)} {'would be ' if dry_run else ''}purged")


def _refetch(env: Mapping[str, str]) -> Refetch:
    """How --refetch reloads: the sources whose CRM API the tenant's environment configures."""
    from ktsync.worker.crm import CrmConfigError

    try:
        return refetch_for(env)
    except CrmConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _store(client: Any, settings: Settings) -> RedisDeadLetterStore:
    return RedisDeadLetterStore(client, settings.key_prefix)


def _select(
    store: RedisDeadLetterStore, ids: tuple[str, ...], everything: bool, where: Filter
) -> list[DeadLetter]:
    try:
        return select(store, Selection(ids=ids, where=where, everything=everything))
    except SelectionError as exc:
        if ids:
            raise click.ClickException(str(exc)) from None
        raise click.UsageError(str(exc)) from None
