"""Scheduled reconciliation (run by `ktsync beat`): re-check what may have drifted, replay what failed.

* Contacts not synced for ``reconcile.max_age``: their subscription status is re-read from KlickTipp
  (``klicktipp.contact_changed``) — KlickTipp owns it and it changes without the CRM — and they are
  loaded again from their CRM (``crm.contact_changed``) when its API is configured.
* Dead letters of transient causes (``retries_exhausted``) older than ``reconcile.retry_failed_after``
  are replayed (each entry stays until its replay succeeds).

`ktsync resync` and `ktsync dlq replay --refetch` reload contacts from their CRM the same way, and
only for sources whose CRM API is configured (:func:`crm_api_sources`): a ``crm.contact_changed``
for any other source could only be dead-lettered as ``config``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ktsync.config.settings import Settings
from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.core.replay import Sender, replay
from ktsync.core.tenants import DEFAULT_TENANT
from ktsync.worker.crm import close, fetchers_from_env, hubspot, zoho
from ktsync.worker.deadletter import DeadLetterStore, Filter
from ktsync.worker.state.base import StateStore

TRANSIENT_REASONS = ("retries_exhausted",)
# The CRMs ktsync can load a contact from, and the variable that gives it access (see worker/crm).
CRM_CREDENTIALS = {
    hubspot.SOURCE: hubspot.TOKEN_ENV,
    close.SOURCE: close.KEY_ENV,
    zoho.SOURCE: zoho.TOKEN_ENV,
}


class NoCrmApi(ValueError):
    """A reload from the CRM was asked for a source whose CRM API is not configured."""


def crm_api_sources(env: Mapping[str, str]) -> frozenset[str]:
    """The sources whose CRM API the environment configures (as a worker's would); ``CrmConfigError``
    for an invalid value."""
    fetchers = fetchers_from_env(env)
    for fetcher in fetchers.values():
        fetcher.close()
    return frozenset(fetchers)


def no_crm_api(source: str) -> str:
    """Why contacts of ``source`` cannot be reloaded from their CRM."""
    variable = CRM_CREDENTIALS.get(source)
    if variable is None:
        return f"ktsync has no CRM API client for source {source!r} (only for {', '.join(sorted(CRM_CREDENTIALS))})"
    return f"no CRM API is configured for source {source!r} ({variable} is not set)"


def resync_origin(source: str, requested: str | None, crm_sources: Collection[str]) -> str:
    """Where `ktsync resync` re-reads contacts: as asked, else ``crm`` where the CRM API is configured
    and ``klicktipp`` elsewhere. :class:`NoCrmApi` for ``crm`` without one. Pure."""
    if requested is None:
        return "crm" if source in crm_sources else "klicktipp"
    if requested == "crm" and source not in crm_sources:
        raise NoCrmApi(no_crm_api(source))
    return requested


@dataclass(frozen=True)
class ReconcileReport:
    refetched: int = 0
    status_checks: int = 0
    replayed: int = 0


def recheck_messages(
    source: str,
    crm_contact_id: str,
    klicktipp_id: str | None,
    now: float,
    *,
    crm_api: bool,
    tenant: str = DEFAULT_TENANT,
) -> list[dict[str, Any]]:
    """The messages that re-check one contact. Pure.

    The subscription status is re-read from KlickTipp whenever the contact's KlickTipp id is known
    (it changes there without the CRM knowing, e.g. an unsubscribe link); the CRM data is loaded
    again when the CRM's API is configured."""
    messages: list[dict[str, Any]] = []
    whose = {"tenant": tenant} if tenant != DEFAULT_TENANT else {}
    if crm_api:
        messages.append({"v": 1, "type": MessageType.CHANGED.value, "source": source,
                         "crm_contact_id": crm_contact_id, "occurred_at": now, **whose})  # fmt: skip
    if klicktipp_id:
        messages.append({"v": 1, "type": MessageType.KLICKTIPP_CHANGED.value, "klicktipp_id": klicktipp_id,
                         "occurred_at": now, **whose})  # fmt: skip
    return messages


def reconcile(
    *,
    state: StateStore,
    dead_letters: DeadLetterStore,
    settings: Settings,
    crm_sources: Collection[str],
    sender: Sender,
    clock: Callable[[], float] = time.time,
) -> ReconcileReport:
    now, conf = clock(), settings.reconcile
    refetched = status_checks = 0
    for source, crm_contact_id in state.oldest(before=now - conf.max_age, limit=conf.batch):
        record = state.get(source, crm_contact_id)
        klicktipp_id = record.klicktipp_id if record else None
        for message in recheck_messages(
            source, crm_contact_id, klicktipp_id, now, crm_api=source in crm_sources, tenant=settings.tenant
        ):
            kind = MessageType(message["type"])
            sender.send(
                TASK_NAMES[kind],
                [message],
                {},
                f"reconcile-{kind.value}-{source}-{crm_contact_id}-{int(now)}",
            )
            refetched += kind is MessageType.CHANGED
            status_checks += kind is MessageType.KLICKTIPP_CHANGED
    replayed = _replay_failed(dead_letters, sender, before=now - conf.retry_failed_after, limit=conf.batch)
    return ReconcileReport(refetched, status_checks, replayed)


def _replay_failed(dead_letters: DeadLetterStore, sender: Sender, *, before: float, limit: int) -> int:
    letters: Iterable[Any] = (
        letter
        for reason in TRANSIENT_REASONS
        for letter in dead_letters.list(Filter(reason=reason), limit=limit)
        if letter.last_failed_at < before
    )
    results = replay(list(letters)[:limit], sender, noted=dead_letters.note_replay)
    return sum(1 for r in results if r.task_id)
