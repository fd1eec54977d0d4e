"""Deletions both ways, each by an explicit policy; afterwards only a tombstone remains in the state.

CRM ``contact.deleted`` -> per-source ``deletion_policy``: ``untag`` (remove owned tags; the default),
``unsubscribe``, ``delete`` or ``ignore``. KlickTipp ``klicktipp.deletion_requested`` ->
``sync.klicktipp_deletion_policy``: ``review`` (the default), ``delete_in_crm`` or ``anonymize``.

A privacy deletion (``contact.deleted`` with ``privacy: true``, e.g. HubSpot's ``privacyDeletion``)
follows the source's ``privacy_deletion_policy`` instead, whatever ``deletion_policy`` says: ``delete``
(the only one) erases the person (see :mod:`ktsync.worker.erasure`). It is never skipped as stale (an
erasure request outranks any state); only one already carried out, for a request at least as new, is
a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from ktsync.core.contract import ContactDeleted, DeletionRequested
from ktsync.worker.contact_tags import ContactTags
from ktsync.worker.erasure import Eraser, Subject
from ktsync.worker.klicktipp.errors import (
    ContactNotFound,
    NotFound,
    NotSubscribedError,
    ReferenceNotFound,
    Rejected,
)
from ktsync.worker.review import ReviewList
from ktsync.worker.service import LOCK_WAIT, SyncDeps, SyncOutcome
from ktsync.worker.state.base import ContactState, claimed
from ktsync.worker.sync.plan import Call

log = logging.getLogger(__name__)


class Deletions:
    def __init__(self, deps: SyncDeps, review: ReviewList, eraser: Eraser) -> None:
        self._client, self._reference, self._state = deps.client, deps.reference, deps.state
        self._outbound, self._settings = deps.outbound, deps.settings
        self._clock = deps.clock
        self._review = review
        self.eraser = eraser
        self._contact_tags = ContactTags(deps.client, deps.reference)

    def contact_deleted(self, event: ContactDeleted) -> SyncOutcome:
        """Apply the source's deletion policy, then purge the contact's personal data from the state."""
        source = self._settings.source(event.source)
        if event.dry_run:
            return self.preview(event)
        if event.privacy:
            return self._erase(event)
        lease = self._settings.sync.lock_lease
        with claimed(
            self._state, source.name, event.crm_contact_id, None, lease=lease, wait=LOCK_WAIT
        ) as claim:
            stored = claim.stored
            skip = _skip(event, stored)
            if skip is not None:
                return SyncOutcome(skip, stored.klicktipp_id if stored else None)
            calls = self._deletion_calls(source.deletion_policy, stored, event.email, source.tag_prefix)
            for call in calls:
                self._run(call)
            base = stored or ContactState(source=source.name, crm_contact_id=event.crm_contact_id)
            self._state.commit(claim, base.tombstone(occurred_at=event.occurred_at, now=self._clock()))
        log.info("contact %s/%s deleted in the CRM: policy %s, %d calls", source.name, event.crm_contact_id,
                 source.deletion_policy, len(calls))  # fmt: skip
        return SyncOutcome(f"deleted_{source.deletion_policy}", base.klicktipp_id)

    def preview(self, event: ContactDeleted) -> SyncOutcome:
        """The calls the source's deletion policy would make (it may search by e-mail to find them)."""
        source = self._settings.source(event.source)
        stored = self._state.get(source.name, event.crm_contact_id)
        if event.privacy:
            return self._erasure_preview(event, stored)
        skip = _skip(event, stored)
        known_id = stored.klicktipp_id if stored else None
        if skip is not None:
            return SyncOutcome(skip, known_id)
        calls = self._deletion_calls(source.deletion_policy, stored, event.email, source.tag_prefix)
        return SyncOutcome("planned", known_id, tuple(calls))

    def _erase(self, event: ContactDeleted) -> SyncOutcome:
        """A privacy deletion under ``privacy_deletion_policy: delete`` (the only policy there is)."""
        stored = self._state.get(event.source, event.crm_contact_id)
        if _already_erased(event, stored):
            return SyncOutcome("duplicate", stored.klicktipp_id if stored else None)
        by = f"privacy deletion (event {event.event_id})" if event.event_id else "privacy deletion"
        report = self.eraser.erase(_subject(event), requested_at=event.occurred_at, by=by)
        policy = self._settings.source(event.source).privacy_deletion_policy
        log.info("contact %s/%s erased: privacy_deletion_policy %s, KlickTipp %d deleted", event.source,
                 event.crm_contact_id, policy, len(report.klicktipp_deleted))  # fmt: skip
        known = stored.klicktipp_id if stored else None
        return SyncOutcome("deleted_privacy", known or next(iter(report.klicktipp_deleted), None))

    def _erasure_preview(self, event: ContactDeleted, stored: ContactState | None) -> SyncOutcome:
        known = stored.klicktipp_id if stored else None
        if _already_erased(event, stored):
            return SyncOutcome("duplicate", known)
        subject = self.eraser.survey(_subject(event)).subject
        deletes = [Call("api.subscriber.delete", {"subscriber_id": i}, "privacy deletion")
                   for i in sorted(subject.klicktipp_ids)]  # fmt: skip
        searches = [Call("api.subscriber.search", {"email": e}, "privacy deletion: find the contact")
                    for e in sorted(subject.emails)]  # fmt: skip
        return SyncOutcome("planned", known, tuple(deletes or searches))

    def _deletion_calls(
        self, policy: str, stored: ContactState | None, email: str | None, prefix: str
    ) -> list[Call]:
        address = (stored.email if stored else None) or email
        kt_id = stored.klicktipp_id if stored else None
        if policy == "ignore":
            return []
        if policy == "unsubscribe":
            return (
                [Call("api.subscriber.unsubscribe", {"email": address}, "policy unsubscribe")]
                if address
                else []
            )
        if policy == "delete":
            kt_id = kt_id or (self._client.subscriber_search(address) if address else None)
            return [Call("api.subscriber.delete", {"subscriber_id": kt_id}, "policy delete")] if kt_id else []
        tag_ids = self._reference.tags()
        tags = stored.carried(tag_ids) if stored else self._owned_tags_of(address, prefix)
        return [
            Call("api.subscriber.untag", {"email": address, "tagid": tag_ids[n]}, f"policy untag: {n}")
            for n in sorted(tags)
            if n in tag_ids and address
        ]

    def _owned_tags_of(self, email: str | None, prefix: str) -> frozenset[str]:
        kt_id = self._client.subscriber_search(email) if email else None
        if kt_id is None:
            return frozenset()
        return self._contact_tags.owned(self._client.subscriber_get(kt_id), prefix, read=True)

    def _run(self, call: Call) -> None:
        try:
            if call.operation == "api.subscriber.delete":
                self._client.subscriber_delete(call.args["subscriber_id"])
            elif call.operation == "api.subscriber.unsubscribe":
                self._client.subscriber_unsubscribe(call.args["email"])
            else:
                self._client.subscriber_untag(call.args["email"], call.args["tagid"])
        except (NotFound, ContactNotFound, NotSubscribedError) as exc:
            # Already gone, never subscribed, or not tagged (error 7 on untag: no such address or
            # tag): the policy's goal holds already.
            log.info("%s: nothing to do (%s)", call.operation, exc.reason)
        except ReferenceNotFound as exc:
            if exc.kind not in (None, "tag") or call.operation != "api.subscriber.untag":
                raise
            log.info("%s: the tag was deleted in KlickTipp, so the contact no longer has it", call.operation)
        except Rejected as exc:
            if type(exc) is not Rejected:
                raise
            log.info("%s: KlickTipp says %s", call.operation, exc)

    def deletion_requested(self, event: DeletionRequested) -> SyncOutcome:
        """KlickTipp's Privacy Dashboard asks for deletion: review it, or tell the CRM to delete/anonymize."""
        policy = self._settings.sync.klicktipp_deletion_policy
        known = self._state.find(klicktipp_id=event.klicktipp_id, email=event.email)
        item: dict[str, Any] = {
            "email": event.email,
            "klicktipp_id": event.klicktipp_id or (known.klicktipp_id if known else None),
            "source": known.source if known else None,
            "crm_contact_id": known.crm_contact_id if known else None,
            "occurred_at": event.occurred_at,
            "received_at": self._clock(),
        }
        if event.dry_run:
            return SyncOutcome("planned", item["klicktipp_id"])
        if policy == "review":
            self._review.add(_request_id(event), item)
            return SyncOutcome("review", item["klicktipp_id"])
        kind = "crm.delete_contact" if policy == "delete_in_crm" else "crm.anonymize_contact"
        self._outbound.publish(kind, item)
        if known is not None and not known.is_tombstone:
            self._state.put(known.tombstone(occurred_at=event.occurred_at, now=self._clock()))
        return SyncOutcome(policy, item["klicktipp_id"])


def _skip(event: ContactDeleted, stored: ContactState | None) -> str | None:
    if stored is not None and event.occurred_at < stored.occurred_at:
        return "stale"
    if stored is not None and stored.is_tombstone:
        return "duplicate"
    return None


def _subject(event: ContactDeleted) -> Subject:
    return Subject.of(contacts=[(event.source, event.crm_contact_id)], emails=[event.email])


def _already_erased(event: ContactDeleted, stored: ContactState | None) -> bool:
    """Erased before, for a request at least as new as this one (a redelivery, a retry)."""
    requested = stored.erasure_requested_at if stored else None
    return requested is not None and event.occurred_at <= requested


def _request_id(event: DeletionRequested) -> str:
    if event.event_id:
        return event.event_id
    basis = f"{event.klicktipp_id or ''}|{event.email or ''}"
    return "req-" + hashlib.sha256(basis.encode()).hexdigest()[:16]
