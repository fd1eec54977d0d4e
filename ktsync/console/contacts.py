"""The contact pages: look a contact up by CRM id, e-mail address or KlickTipp id (POSTed: the address
never goes into a URL), see its state, timeline and dead letters; erase it (privacy deletion) after a
preview, as ``ktsync contact forget`` does."""

from __future__ import annotations

import time
from typing import Any

import click
from starlette.responses import Response

from ktsync.console.audit import entry
from ktsync.console.context import ConsoleError
from ktsync.console.frame import Page
from ktsync.contacts import AmbiguousContact, contact_report
from ktsync.core.tenants import DEFAULT_TENANT

KINDS = ("auto", "klicktipp")  # auto: an e-mail address, source/crm-id or a CRM id; klicktipp: a KlickTipp id


def lookup_form(page: Page) -> Response:
    return page.render("contacts.html", tenants=page.console.tenants(), tenant=DEFAULT_TENANT, report=None,
                       asked=False)  # fmt: skip


def lookup(page: Page) -> Response:
    tenant = page.arg("tenant") or DEFAULT_TENANT
    query, source, kind = page.arg("query"), page.arg("source") or None, page.arg("kind") or "auto"
    context: dict[str, Any] = {
        "tenants": page.console.tenants(),
        "tenant": tenant,
        "report": None,
        "asked": True,
    }
    if not query:
        page.flash("error", "query: give a CRM id (source/id), an e-mail address or a KlickTipp id")
        return page.render("contacts.html", status=400, **context)
    if kind not in KINDS:
        page.flash("error", f"kind: one of {', '.join(KINDS)}")
        return page.render("contacts.html", status=400, **context)
    try:
        prefix = page.console.scoped(tenant).key_prefix
        report = contact_report(page.console.client, prefix, query, source, klicktipp_id=kind == "klicktipp")
    except (ConsoleError, AmbiguousContact) as exc:
        page.flash("error", str(exc))
        return page.render("contacts.html", status=400, **context)
    return page.render("contacts.html", **{**context, "report": report})


def _subject(page: Page) -> tuple[str, str, str]:
    tenant, source, crm_id = (
        page.arg("tenant") or DEFAULT_TENANT,
        page.arg("source"),
        page.arg("crm_contact_id"),
    )
    if not source or not crm_id:
        raise ConsoleError("source and crm_contact_id: the contact to erase (look it up first)")
    return tenant, source, crm_id


def forget_preview(page: Page) -> Response:
    return _forget(page, erase=False)


def forget(page: Page) -> Response:
    return _forget(page, erase=True)


def _forget(page: Page, *, erase: bool) -> Response:
    """What an erasure of the contact would remove (``erase``: remove it, and log who did)."""
    from ktsync.cli_contact import erasure
    from ktsync.worker.erasure import Subject

    report = None
    try:
        tenant, source, crm_id = _subject(page)
        with erasure(page.console.scoped(tenant), page.console.tenant_env(tenant)) as eraser:
            survey = eraser.survey(Subject.of(contacts=[(source, crm_id)]))
            if erase:
                report = eraser.erase(
                    survey.subject, requested_at=time.time(), by=f"console:{page.user.name}"
                )
    except (ConsoleError, click.ClickException) as exc:
        page.flash("error", exc.format_message() if isinstance(exc, click.ClickException) else str(exc))
        return page.render("forget.html", status=400, survey=None, report=None, tenant="", contact=None)
    if report is not None:
        page.console.audit.record(
            entry(page.user.name, "forget", tenant, 1, f"contact {source}/{crm_id}", page.console.clock)
        )
    shown = None if erase else survey
    return page.render("forget.html", survey=shown, report=report, tenant=tenant, contact=(source, crm_id))
