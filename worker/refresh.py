"""Events that carry only ids: load the contact first (from the CRM, or KlickTipp's status), then act.

* ``crm.contact_changed``: fetch the contact from its CRM's API and sync it like a ``contact.upsert``.
* ``klicktipp.contact_changed``: KlickTipp reported a contact; read its current subscription status,
  keep it in the state store and tell the CRM side (guide step 12) on the outbound stream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from ktsync.core.contract import ContactChanged, ContactUpsert, KlickTippContactChanged
from ktsync.core.errors import KtsyncError
from ktsync.worker.crm import CrmFetcher
from ktsync.worker.service import ContactSync, SyncDeps, SyncOutcome

log = logging.getLogger(__name__)


class MissingCrmApi(KtsyncError):
    """A webhook carried only ids, but no API credentials are configured for its CRM."""

    reason = "config"


class Refresh:
    def __init__(self, deps: SyncDeps, sync: ContactSync, fetchers: Mapping[str, CrmFetcher]) -> None:
        self._deps, self._sync, self._fetchers = deps, sync, fetchers

    def fetch_and_sync(self, event: ContactChanged) -> SyncOutcome:
        fetcher = self._fetchers.get(event.source)
        if fetcher is None:
            raise MissingCrmApi(f"no CRM API configured for source {event.source!r} (see README: CRM fetch)")
        contact = fetcher.fetch(event.crm_contact_id)
        if contact is None:
            log.info("%s/%s no longer exists in the CRM; nothing to sync", event.source, event.crm_contact_id)
            return SyncOutcome("not_in_crm")
        if not contact.email and not contact.sms_number:
            log.info(
                "%s/%s has no e-mail address or SMS number in the CRM; nothing to sync",
                event.source,
                event.crm_contact_id,
            )
            return SyncOutcome("no_address")
        upsert = ContactUpsert(
            source=event.source,
            crm_contact_id=event.crm_contact_id,
            email=contact.email,
            sms_number=contact.sms_number,
            properties=dict(contact.properties),
            occurred_at=event.occurred_at,
            event_id=event.event_id,
            dry_run=event.dry_run,
        )
        return self._sync.upsert(upsert)

    def from_klicktipp(self, event: KlickTippContactChanged) -> SyncOutcome:
        deps = self._deps
        known = deps.state.find(klicktipp_id=event.klicktipp_id, email=event.email)
        kt_id = event.klicktipp_id or (known.klicktipp_id if known else None)
        if kt_id is None and event.email:
            kt_id = deps.client.subscriber_search(event.email)
        if kt_id is None:
            return SyncOutcome("not_in_klicktipp")
        subscriber = deps.client.subscriber_get(kt_id)
        status = subscriber.subscription.value
        if known is not None and not known.is_tombstone:
            deps.state.put(replace(known, subscription=status, updated_at=deps.clock()))
        deps.outbound.publish(
            "contact.synced",
            {
                "source": known.source if known else None,
                "crm_contact_id": known.crm_contact_id if known else None,
                "klicktipp_id": kt_id,
                "email": subscriber.email,
                "subscription": status,
                "applied_at": deps.clock(),
                "event_id": event.event_id,
            },
        )
        return SyncOutcome("refreshed", kt_id)
