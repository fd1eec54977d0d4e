"""Apply one contact event to KlickTipp with the fewest calls, following KlickTipp's CRM guide.

Identity: the stored KlickTipp id (update by id, never a duplicate on an e-mail change), else
add-or-update by e-mail (which matches an existing contact itself), else create. Subscription status
belongs to KlickTipp: an unsubscribed contact is never re-subscribed; its fields and tags are still
updated by id. Tags are applied as the final desired state. Events for one contact never interleave
(a leased lock), stale and duplicate events are skipped, unchanged ones cost no call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ktsync.config.settings import LISTID_MISSING, Settings, SourceSettings
from ktsync.contract import ContactUpsert
from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.errors import (
    ConflictError,
    NotFound,
    NotSubscribedError,
    ReferenceNotFound,
    Rejected,
    UnsubscribedError,
    ValidationError,
)
from ktsync.worker.klicktipp.models import Subscriber
from ktsync.worker.outbound import Outbound
from ktsync.worker.reference import ReferenceData
from ktsync.worker.state.base import Claim, ContactState, StateStore, claimed
from ktsync.worker.sync.desired import Desired, Skip, skip_reason
from ktsync.worker.sync.mapping import MappingConfigError, map_contact, resolve_mapping
from ktsync.worker.sync.plan import Call, first_tag, identity_call, owned_names, tag_calls
from ktsync.worker.sync.segments import desired_tags

log = logging.getLogger(__name__)

LOCK_WAIT = 2.0  # seconds a task waits for another event of the same contact before it requeues
Notify = Callable[[SourceSettings, Mapping[str, Any]], None]


@dataclass(frozen=True)
class SyncOutcome:
    status: str  # synced | unsubscribed | unchanged | stale | duplicate | planned | deleted | ...
    klicktipp_id: str | None = None
    plan: tuple[Call, ...] = ()


class EmailChangeConflict(Exception):
    """KlickTipp refused the new address (it belongs to another contact, or changes are not allowed)."""

    reason = "conflict"

    def __init__(self, old_email: str | None, new_email: str, cause: ConflictError) -> None:
        self.old_email, self.new_email, self.cause = old_email, new_email, cause
        super().__init__(f"e-mail change {old_email} -> {new_email} refused: {cause}")

    def to_dict(self) -> dict[str, Any]:
        return {**self.cause.to_dict(), "old_email": self.old_email, "new_email": self.new_email}


@dataclass(frozen=True)
class SyncDeps:
    """What the sync and deletion logic talks to (all injected; tests pass in-memory twins)."""

    client: KlickTippClient
    reference: ReferenceData
    state: StateStore
    outbound: Outbound
    settings: Settings
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class _Applied:
    klicktipp_id: str
    subscription: str
    tags: frozenset[str]


class ContactSync:
    """The I/O shell around the pure planning functions of ``worker.sync``."""

    def __init__(self, deps: SyncDeps, notify: Notify | None = None) -> None:
        self._client, self._reference, self._state = deps.client, deps.reference, deps.state
        self._outbound, self._settings = deps.outbound, deps.settings
        self._clock = deps.clock
        self._notify = notify

    def desired(self, event: ContactUpsert, source: SourceSettings) -> Desired:
        """Map the event; raises MappingError (bad values) or MappingConfigError (bad mapping)."""
        mapped = map_contact(
            crm_contact_id=event.crm_contact_id,
            email=event.email,
            sms_number=event.sms_number,
            properties=event.properties,
            mapping=resolve_mapping(source, self._reference.fields()),
        )
        return Desired(
            mapped.email, mapped.sms_number, mapped.fields, desired_tags(event.properties, source.tag_rules)
        )

    def upsert(self, event: ContactUpsert) -> SyncOutcome:
        source = self._settings.source(event.source)
        if source.listid is None:  # preflight refuses this; never let KlickTipp pick its default DOI
            raise MappingConfigError(f"sources.{source.name}.listid: {LISTID_MISSING}")
        desired = self.desired(event, source)
        if event.dry_run:
            return self.preview(event)
        lease = self._settings.sync.lock_lease
        with claimed(
            self._state, source.name, event.crm_contact_id, event.event_id, lease=lease, wait=LOCK_WAIT
        ) as claim:
            stored = claim.stored
            skip = skip_reason(occurred_at=event.occurred_at, stored=stored, desired_hash=desired.state_hash, duplicate=claim.seen)  # fmt: skip
            if skip is not None:
                return self._skipped(skip, event, claim)
            applied = self._apply_with_refresh(desired, stored, source)
            self._remember(event, source, desired, applied, claim)
        status = "unsubscribed" if applied.subscription == "unsubscribed" else "synced"
        return SyncOutcome(status, applied.klicktipp_id)

    def preview(self, event: ContactUpsert) -> SyncOutcome:
        """What ``upsert`` would do, as a plan of calls with reasons: reads, never writes to KlickTipp."""
        source = self._settings.source(event.source)
        desired = self.desired(event, source)
        stored, seen = self._state.load(source.name, event.crm_contact_id, event.event_id)
        skip = skip_reason(occurred_at=event.occurred_at, stored=stored, desired_hash=desired.state_hash, duplicate=seen)  # fmt: skip
        known_id = stored.klicktipp_id if stored else None
        if skip is not None:
            return SyncOutcome(skip.value, known_id)
        return SyncOutcome("planned", known_id, self.plan(desired, stored, source))

    def plan(self, desired: Desired, stored: ContactState | None, source: SourceSettings) -> tuple[Call, ...]:
        """The calls an upsert would make, for a dry run: reads reference data, writes nothing."""
        known = self._reference.tags()
        missing = sorted(desired.tags - set(known))
        tag_ids = {**known, **{name: f"<new {name}>" for name in missing}}
        creates = [Call("api.tag.create", {"name": n}, "the tag does not exist yet") for n in missing]
        known_contact = stored is not None and bool(stored.klicktipp_id) and not stored.is_tombstone
        current = stored.tags if known_contact and stored else frozenset()
        tagid = None if known_contact else first_tag(desired.tags, current, tag_ids)
        identity = identity_call(desired, stored, listid=source.listid or 0, tagid=tagid)
        after = current | ({n for n, i in tag_ids.items() if i == tagid} if tagid else set())
        email = desired.email or (stored.email if stored else None)
        tags = tag_calls(email=email, desired=desired.tags, current=frozenset(after), tag_ids=tag_ids)
        return (*creates, *([identity] if identity else []), *tags)

    def _skipped(self, skip: Skip, event: ContactUpsert, claim: Claim) -> SyncOutcome:
        stored = claim.stored
        if skip is Skip.UNCHANGED and stored is not None:
            # Nothing to send, but later events older than this one are now stale.
            refreshed = replace(stored, occurred_at=event.occurred_at, updated_at=self._clock())
            self._state.commit(claim, refreshed, event=self._event(event))
        log.info("skipped %s event for %s/%s", skip.value, event.source, event.crm_contact_id)
        return SyncOutcome(skip.value, stored.klicktipp_id if stored else None)

    def _apply_with_refresh(
        self, desired: Desired, stored: ContactState | None, source: SourceSettings
    ) -> _Applied:
        try:
            return self._apply(desired, stored, source)
        except (ReferenceNotFound, ValidationError) as exc:
            if isinstance(exc, ValidationError) and not exc.field_key:
                raise
            # A tag, list or field KlickTipp no longer knows: refresh the reference data once, try again.
            log.warning("refreshing reference data after %s", exc.reason)
            self._reference.invalidate()
            return self._apply(desired, stored, source)

    def _apply(self, desired: Desired, stored: ContactState | None, source: SourceSettings) -> _Applied:
        tag_ids = {**self._reference.tags(), **self._reference.ensure_tags(desired.tags)}
        if stored and stored.klicktipp_id and not stored.is_tombstone:
            kt_id = self._update(desired, stored)
            if kt_id is not None:
                applied = _Applied(kt_id, stored.subscription, stored.tags)
                return self._apply_tags(desired, stored.email, applied, tag_ids)
            stored = None  # the stored id is gone in KlickTipp: add-or-update by e-mail below
        subscriber = self._add_or_update(desired, source, tag_ids)
        current = owned_names(subscriber.manual_tags, self._reference.tag_names(), source.tag_prefix)
        applied = _Applied(subscriber.id, subscriber.subscription.value, current)
        return self._apply_tags(desired, subscriber.email, applied, tag_ids)

    def _update(self, desired: Desired, stored: ContactState) -> str | None:
        """Update by id; None when KlickTipp no longer has that id."""
        call = identity_call(desired, stored, listid=0, tagid=None)
        if call is None:
            return stored.klicktipp_id
        args = {k: v for k, v in call.args.items() if k != "subscriber_id"}
        try:
            self._client.subscriber_update(stored.klicktipp_id or "", **args)
        except ConflictError as exc:
            if args.get("newemail"):
                raise EmailChangeConflict(stored.email, args["newemail"], exc) from exc
            raise
        except (NotFound, Rejected) as exc:
            if type(exc) not in (NotFound, Rejected) or self._exists(stored.klicktipp_id or ""):
                raise
            log.warning("KlickTipp id %s no longer exists; resolving by e-mail", stored.klicktipp_id)
            return None
        return stored.klicktipp_id

    def _exists(self, klicktipp_id: str) -> bool:
        try:
            self._client.subscriber_get(klicktipp_id)
        except NotFound:
            return False
        return True

    def _add_or_update(
        self, desired: Desired, source: SourceSettings, tag_ids: Mapping[str, str]
    ) -> Subscriber:
        tagid = first_tag(desired.tags, frozenset(), tag_ids)
        call = identity_call(desired, None, listid=source.listid or 0, tagid=tagid)
        if call is None:  # identity_call always adds a contact that has no KlickTipp id stored
            raise RuntimeError("no add-or-update planned for a contact without a KlickTipp id")
        try:
            return self._client.subscriber_create(**call.args)
        except UnsubscribedError as refusal:
            return self._adopt_unsubscribed(desired, refusal)

    def _adopt_unsubscribed(self, desired: Desired, refusal: UnsubscribedError) -> Subscriber:
        """KlickTipp refused add-or-update because the contact unsubscribed: update it by id instead."""
        kt_id = self._client.subscriber_search(desired.email or "") if desired.email else None
        if kt_id is None:
            raise refusal
        subscriber = self._client.subscriber_get(kt_id)
        self._client.subscriber_update(kt_id, fields=dict(desired.fields))
        return subscriber

    def _apply_tags(
        self, desired: Desired, email: str | None, applied: _Applied, tag_ids: Mapping[str, str]
    ) -> _Applied:
        address = desired.email or email
        calls = tag_calls(email=address, desired=desired.tags, current=applied.tags, tag_ids=tag_ids)
        if not address and desired.tags != applied.tags:
            log.warning(
                "contact %s has no e-mail address; KlickTipp tags by e-mail only", applied.klicktipp_id
            )
            return applied
        try:
            for call in calls:
                self._run_tag_call(call)
        except (UnsubscribedError, NotSubscribedError):
            log.info("KlickTipp does not allow tagging contact %s in its state", applied.klicktipp_id)
            return applied
        return _Applied(applied.klicktipp_id, applied.subscription, desired.tags)

    def _run_tag_call(self, call: Call) -> None:
        if call.operation == "api.subscriber.tag":
            self._client.subscriber_tag(call.args["email"], call.args["tagids"])
        else:
            self._client.subscriber_untag(call.args["email"], call.args["tagid"])

    def _remember(
        self,
        event: ContactUpsert,
        source: SourceSettings,
        desired: Desired,
        applied: _Applied,
        claim: Claim,
    ) -> None:
        now = self._clock()
        state = ContactState(
            source=source.name,
            crm_contact_id=event.crm_contact_id,
            klicktipp_id=applied.klicktipp_id,
            email=desired.email,
            sms_number=desired.sms_number,
            fields_hash=desired.fields_hash,
            state_hash=desired.state_hash if applied.tags == desired.tags else None,
            tags=applied.tags,
            occurred_at=event.occurred_at,
            subscription=applied.subscription,
            updated_at=now,
        ).with_erasure_of(claim.stored)  # a contact back after an erasure keeps that history
        self._state.commit(claim, state, event=self._event(event))
        self._publish(source, state, event)

    def _event(self, event: ContactUpsert) -> tuple[str, int] | None:
        """The event to remember as applied (for duplicates), if it has an id."""
        return (event.event_id, self._settings.sync.event_id_ttl) if event.event_id else None

    def _publish(self, source: SourceSettings, state: ContactState, event: ContactUpsert) -> None:
        """Tell the CRM side the KlickTipp id and subscription status (guide steps 8 and 12)."""
        payload = {
            "source": state.source,
            "crm_contact_id": state.crm_contact_id,
            "klicktipp_id": state.klicktipp_id,
            "email": state.email,
            "subscription": state.subscription,
            "applied_at": state.updated_at,
            "event_id": event.event_id,
        }
        self._outbound.publish("contact.synced", payload)
        if source.callback_url and self._notify is not None:
            self._notify(source, payload)
