"""`ktsync contact show` and `ktsync contact forget`: one contact's story, and erasing a person.

``show`` finds a contact by its state, and also one that only failed so far (dead letters and a
timeline, no state yet). ``forget`` is an operator's privacy deletion (GDPR erasure): it runs the
worker's own erasure (:mod:`ktsync.worker.erasure`) in this process, not through the queue, so that the
operator learns right away that it is done and what went, with no worker needed; it takes the contacts'
locks (no task of theirs runs meanwhile) and the shared KlickTipp budget like a worker.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
import redis

from ktsync.config.settings import Settings
from ktsync.contacts import AmbiguousContact, contact_report
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.tenant_ops import tenant_block, tenant_environ
from ktsync.tenant_scope import scoped_settings, tenant_option

OPERATOR = "operator (ktsync contact forget)"


def register(contact: click.Group, settings: Callable[[], Settings], redis_block: Callable[..., Any]) -> None:
    """Add ``show`` and ``forget`` to the ``contact`` group."""

    @contact.command("show")
    @click.argument("who")
    @click.option("--source", "-s", help="The CRM source (needed when WHO is a CRM id used by several).")
    @click.option("--json", "as_json", is_flag=True)
    @tenant_option
    def contact_show(who: str, source: str | None, as_json: bool, tenant: str) -> None:
        """One contact's state, dead letters and timeline. WHO: a CRM contact id (or source/id) or an
        e-mail address.

        The timeline is newest first: events received, KlickTipp calls with their results, outcomes,
        dead letters and replays. A contact that only failed so far (no state yet) is found by its
        dead letters and timeline."""
        with tenant_block(redis_block, settings(), tenant) as (client, conf):
            try:
                report = contact_report(client, conf.key_prefix, who, source)
            except AmbiguousContact as exc:
                raise click.ClickException(str(exc)) from None
        if report is None:
            whose = "" if tenant == DEFAULT_TENANT else f" in tenant {tenant}"
            raise click.ClickException(f"ktsync knows no contact {who!r}{whose}")
        if as_json:
            click.echo(json.dumps(report, sort_keys=True, default=str))
            return
        _print_contact(report)

    @contact.command("forget")
    @click.argument("who")
    @click.option("--source", "-s", help="Read WHO as a CRM contact id of this source.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("--json", "as_json", is_flag=True, help="Print the erasure report as JSON.")
    @tenant_option
    def contact_forget(who: str, source: str | None, yes: bool, as_json: bool, tenant: str) -> None:
        """Erase a person (a GDPR erasure request). WHO: source/crm-id, an e-mail address, or a KlickTipp
        id (with --source: a CRM id of that source).

        Deletes the contact in KlickTipp and ktsync's copies of its personal data (state, timeline,
        dead letters, review entries, outbound entries, parked retries); only a tombstone with ids and
        times remains. Irreversible: asks first unless --yes. Prints what was erased, never an address.
        Only within one tenant (--tenant): its keys, and its KlickTipp account."""
        subject, meaning = parse_who(who, source)
        with redis_block(settings()) as (client, base):
            conf = scoped_settings(base, tenant, client=client)
            env = tenant_environ(base, tenant, os.environ, client=client)
        with erasure(conf, env) as eraser:
            survey = eraser.survey(subject)
            whose = "" if tenant == DEFAULT_TENANT else f" of tenant {tenant}"
            click.echo(f"WHO is {meaning}{whose}; {_preview(survey)}", err=True)
            if not yes:
                click.confirm("Erase it, in KlickTipp too? This cannot be undone", abort=True, err=True)
            report = eraser.erase(survey.subject, requested_at=time.time(), by=OPERATOR)
        if as_json:
            click.echo(json.dumps(report.to_dict(), sort_keys=True))
            return
        for line in _report_lines(report):
            click.echo(line)


def parse_who(who: str, source: str | None) -> tuple[Any, str]:
    """WHO as a :class:`~ktsync.worker.erasure.Subject`, and what it was read as (no address in it)."""
    from ktsync.worker.erasure import Subject

    text = who.strip()
    if not text:
        raise click.BadParameter("give source/crm-id, an e-mail address or a KlickTipp id", param_hint="WHO")
    if source:
        return Subject.of(contacts=[(source, text)]), f"CRM contact {source}/{text}"
    if "@" in text:
        return Subject.of(emails=[text]), "an e-mail address"
    name, sep, crm_id = text.partition("/")
    if sep:
        if not name or not crm_id:
            raise click.BadParameter(f"{text!r}: use source/crm-id, e.g. hubspot/501", param_hint="WHO")
        return Subject.of(contacts=[(name, crm_id)]), f"CRM contact {name}/{crm_id}"
    return Subject.of(klicktipp_ids=[text]), f"KlickTipp id {text} (a CRM id needs source/id or --source)"


@contextmanager
def erasure(conf: Settings, env: Mapping[str, str]) -> Iterator[Any]:
    """The worker's eraser on a runtime of this command's own for the tenant of ``conf`` and ``env``
    (its KlickTipp client and stores, the shared limiter), closed afterwards; a failure in one line
    (the erasure is idempotent: the advice is to run it again). A disabled tenant can be erased too."""
    from ktsync.worker.crm.base import CrmConfigError
    from ktsync.worker.klicktipp.errors import KlickTippConfigError as CredentialsError
    from ktsync.worker.klicktipp.errors import KlickTippError
    from ktsync.worker.locks import LockBusy
    from ktsync.worker.runtime import WorkerRuntime

    again = "nothing was purged; run the command again"
    runtime = None
    try:
        runtime = WorkerRuntime.build(conf, env)
        yield runtime.services.deletions.eraser
    except (CredentialsError, CrmConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except KlickTippError as exc:
        raise click.ClickException(f"KlickTipp failed ({exc.reason}): {exc}; {again}") from None
    except LockBusy:
        raise click.ClickException(f"a task of this contact is running; {again} in a moment") from None
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis failed ({type(exc).__name__}: {exc}); {again}") from None
    finally:
        if runtime is not None:
            runtime.close()
            runtime.shared.redis.close()  # this command's own (a worker's is closed by its Tenants)


def _preview(survey: Any) -> str:
    subject = survey.subject
    contacts = ", ".join(f"{s}/{c}" for s, c in sorted(subject.contacts)) or "none"
    ids = ", ".join(sorted(subject.klicktipp_ids)) or "none known (KlickTipp is searched by address)"
    held = ", ".join(
        f"{len(keys)} {store.replace('_', ' ')}" for store, keys in sorted(survey.doomed.items())
    )
    return f"CRM contacts: {contacts}; KlickTipp ids: {ids}; ktsync holds {held}"


def _report_lines(report: Any) -> list[str]:
    removed = ", ".join(
        f"{count} {store.replace('_', ' ')}" for store, count in sorted(report.removed.items())
    )
    return [
        f"erased: tombstones {', '.join(report.contacts) or '- (no CRM contact known)'}",
        f"KlickTipp: deleted {', '.join(report.klicktipp_deleted) or '-'}; "
        f"already gone {', '.join(report.klicktipp_gone) or '-'}",
        f"removed: {removed}",
    ]


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _print_contact(report: dict[str, Any]) -> None:
    who = f"{report['contact']['source']}/{report['contact']['crm_contact_id']}"
    s = report["state"]
    if s is None:
        click.echo(f"{who}: no state yet (nothing applied to KlickTipp so far)")
    else:
        deleted = f", deleted {_when(s['deleted_at'])}" if s.get("deleted_at") else ""
        erased = (f", erased {_when(s['erased_at'])} (requested {_when(s['erasure_requested_at'])}, "
                  f"by {s.get('erased_by') or '?'})") if s.get("erased_at") else ""  # fmt: skip
        click.echo(f"{who}: KlickTipp id {s.get('klicktipp_id') or '-'}, "
                   f"{s.get('email') or '-'}, {s.get('subscription')}, tags {', '.join(s.get('tags') or []) or '-'}"
                   f"{deleted}{erased}")  # fmt: skip
    for letter in report["dead_letters"]:
        click.echo(f"  dead letter {letter['id']}: {letter['reason']} (replays {letter['replays']})")
    for entry in report["timeline"]:
        details = {k: v for k, v in entry.items() if k not in ("at", "kind") and v not in (None, "")}
        click.echo(f"  {_when(entry['at'])}  {entry['kind']:<11} {json.dumps(details, sort_keys=True)}")
