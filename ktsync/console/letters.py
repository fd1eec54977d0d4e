"""The dead-letter pages: groups by cause with the runbook's meaning and fix, filters, one letter in
full, and replay or purge of one letter, a selection or a whole group, each after a preview.

A replay goes through the bulk lane and the rate limiter (:func:`ktsync.letters.replay_letters`, as
``ktsync dlq replay``); the entry leaves the list once its replayed task has succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import Response

from ktsync.console.audit import entry
from ktsync.console.context import ConsoleError
from ktsync.console.frame import Page
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.letters import (
    ALL,
    Selection,
    SelectionError,
    parse_since,
    purge_letters,
    refetch_for,
    replay_letters,
)
from ktsync.letters import select as select_letters
from ktsync.worker.deadletter import DeadLetter, Filter, RedisDeadLetterStore
from ktsync.worker.deadletter.triage import group, group_census

if TYPE_CHECKING:
    from ktsync.core.replay import Refetch

SHOWN = 200  # entries listed on the page (groups count every letter)
NO_CODE = "none"  # the code field of a group KlickTipp gave no code: exactly its letters, not every code


@dataclass(frozen=True)
class Chosen:
    """The tenant and selection a page or form names, and the filter fields as given."""

    tenant: str
    selection: Selection
    fields: dict[str, str]


def chosen(page: Page, *, with_ids: bool = True) -> Chosen:
    """Read tenant, ids and the filter fields; ConsoleError names the field that is wrong."""
    tenant = page.arg("tenant") or DEFAULT_TENANT
    fields = {name: page.arg(name) for name in ("reason", "code", "source", "since")}
    code: int | None = None
    if fields["code"] and fields["code"] != NO_CODE:
        try:
            code = int(fields["code"])
        except ValueError:
            raise ConsoleError(
                f"code: a KlickTipp error code is a number (or {NO_CODE}: none given), not {fields['code']!r}"
            ) from None
    try:
        since = parse_since(fields["since"], page.console.clock())
    except ValueError as exc:
        raise ConsoleError(f"since: {exc}") from None
    where = Filter(reason=fields["reason"] or None, code=code, source=fields["source"] or None, since=since)
    ids = tuple(page.args("ids")) if with_ids else ()
    everything = page.arg("scope") == "all"
    without_code = fields["code"] == NO_CODE
    return Chosen(
        tenant, Selection(ids=ids, where=where, everything=everything, without_code=without_code), fields
    )


def _store(page: Page, tenant: str) -> RedisDeadLetterStore:
    return RedisDeadLetterStore(page.console.client, page.console.scoped(tenant).key_prefix)


def _failed(page: Page, template: str, exc: Exception, **context: object) -> Response:
    page.flash("error", str(exc))
    return page.render(template, status=400, **context)


def dead_letters(page: Page) -> Response:
    tenants = page.console.tenants()
    try:
        want = chosen(page, with_ids=False)
        store = _store(page, want.tenant)
    except ConsoleError as exc:
        empty = {"groups": [], "letters": [], "total": 0, "evicted": 0, "tenant": DEFAULT_TENANT}
        return _failed(page, "dead_letters.html", exc, tenants=tenants, fields={}, **empty)
    if not want.selection.names_something():  # every letter: the groups from the cause index
        groups, letters, total = (
            group_census(store.census(), store.get),
            store.list(limit=SHOWN),
            store.count(),
        )
    else:  # a filter: read the letters it holds
        matching = [x for x in store.list(want.selection.where, limit=ALL) if want.selection.matches(x)]
        groups, letters, total = group(matching), matching[:SHOWN], len(matching)
    return page.render(
        "dead_letters.html",
        tenants=tenants,
        tenant=want.tenant,
        fields=want.fields,
        groups=groups,
        letters=letters,
        total=total,
        evicted=store.evicted(),
    )


def dead_letter(page: Page) -> Response:
    letter_id = page.request.path_params["letter_id"]
    tenant = page.arg("tenant") or DEFAULT_TENANT
    try:
        store = _store(page, tenant)
    except ConsoleError as exc:
        return _failed(page, "dead_letter.html", exc, letter=None, tenant=tenant, history=[])
    letter = store.get(letter_id)
    if letter is None:
        page.flash("error", f"no dead letter {letter_id} in tenant {tenant} (replayed and synced, or purged)")
        return page.render("dead_letter.html", status=404, letter=None, tenant=tenant, history=[])
    return page.render(
        "dead_letter.html", letter=letter, tenant=tenant, history=_history(page, tenant, letter)
    )


def _history(page: Page, tenant: str, letter: DeadLetter) -> list[dict[str, object]]:
    from ktsync.worker.erasure.plan import contact_of
    from ktsync.worker.telemetry import read_timeline

    contact = contact_of(letter.message)
    if contact is None:
        return []
    return read_timeline(page.console.client, page.console.scoped(tenant).key_prefix, *contact)


def _selected(page: Page) -> tuple[Chosen, RedisDeadLetterStore, list[DeadLetter]]:
    """The selection a form names, the tenant's store and the letters it holds."""
    want = chosen(page)
    if not want.selection.names_something():
        raise ConsoleError("choose dead letters first: tick some, or use a group's button")
    store = _store(page, want.tenant)
    try:
        return want, store, select_letters(store, want.selection)
    except SelectionError as exc:
        raise ConsoleError(str(exc)) from None


def _refetch(page: Page, tenant: str) -> Refetch | None:
    if page.arg("refetch") != "1":
        return None
    from ktsync.worker.crm import CrmConfigError

    try:
        return refetch_for(page.console.tenant_env(tenant), page.console.clock())
    except CrmConfigError as exc:
        raise ConsoleError(str(exc)) from None


def replay_preview(page: Page) -> Response:
    try:
        want, store, letters = _selected(page)
        results = replay_letters(
            page.console.settings,
            want.tenant,
            store,
            letters,
            dry_run=True,
            refetch=_refetch(page, want.tenant),
        )
    except ConsoleError as exc:
        return _failed(
            page, "replay_preview.html", exc, want=None, items=[], would=0, refused=0, refetch=False
        )
    by_id = {letter.id: letter for letter in letters}
    items = [(by_id[r.letter_id], r.problem) for r in results]
    would = sum(1 for _letter, problem in items if not problem)
    return page.render(
        "replay_preview.html", want=want, items=items, would=would, refused=len(items) - would,
        refetch=page.arg("refetch") == "1",
    )  # fmt: skip


def replay(page: Page) -> Response:
    from ktsync.producers import EnqueueError

    try:
        want, store, letters = _selected(page)
        how = _refetch(page, want.tenant)
        results = replay_letters(page.console.settings, want.tenant, store, letters, refetch=how)
    except (ConsoleError, EnqueueError) as exc:
        return _failed(page, "replay_result.html", exc, want=None, results=[], replayed=0, refused=0)
    replayed = sum(1 for r in results if r.task_id)
    action = "refetch" if how is not None else "replay"
    page.console.audit.record(
        entry(page.user.name, action, want.tenant, replayed, want.selection.describe(), page.console.clock)
    )
    return page.render(
        "replay_result.html", want=want, results=results, replayed=replayed, refused=len(results) - replayed
    )


def purge_preview(page: Page) -> Response:
    try:
        want, _, letters = _selected(page)
    except ConsoleError as exc:
        return _failed(page, "purge_preview.html", exc, want=None, letters=[])
    return page.render("purge_preview.html", want=want, letters=letters)


def purge(page: Page) -> Response:
    try:
        want, store, letters = _selected(page)
        purged = purge_letters(store, letters)
    except ConsoleError as exc:
        return _failed(page, "purge_result.html", exc, want=None, purged=0)
    page.console.audit.record(
        entry(page.user.name, "purge", want.tenant, purged, want.selection.describe(), page.console.clock)
    )
    return page.render("purge_result.html", want=want, purged=purged)
