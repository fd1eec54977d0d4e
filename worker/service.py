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
from dataclasses import dataclass, field, replace
from typing import Any

from ktsync.config.settings import LISTID_MISSING, Settings, SourceSettings
from ktsync.core.contract import ContactUpsert
from ktsync.core.errors import KtsyncError
from ktsync.worker.alarms import Alarms
from ktsync.worker.contact_tags import ContactTags
from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.errors import (
    ConflictError,
    ContactNotFound,
    ContactOrTagNotFound,
    NotFound,
    NotSubscribedError,
    ReferenceNotFound,
    Rejected,
    SubscriptionNotFound,
    UnsubscribedError,
    ValidationError,
)
from ktsync.worker.klicktipp.models import Subscriber, SubscriptionStatus
from ktsync.worker.outbound import Outbound
from ktsync.worker.reference import ReferenceData
from ktsync.worker.state.base import Claim, ContactState, StateStore, claimed
from ktsync.worker.state.held import Held
from ktsync.worker.sync.desired import Desired, Skip, skip_reason
from ktsync.worker.sync.mapping import MappingConfigError, ResolvedMapping, map_contact, resolve_mapping
from ktsync.worker.sync.plan import Call, applied_tags, first_tag, identity_call, tag_calls, tag_ids_of
from ktsync.worker.sync.segments import desired_tags

log = logging.getLogger(__name__)

LOCK_WAIT = 2.0  # seconds a task waits for another event of the same contact before it requeues
Notify = Callable[[SourceSettings, Mapping[str, Any]], None]


@dataclass(frozen=True)
class SyncOutcome:
    status: str  # synced | unsubscribed | unchanged | stale | duplicate | planned | deleted | ...
    klicktipp_id: str | None = None
    plan: tuple[Call, ...] = ()
    #: Writes held for the task's closing round trip, in order (the outbound entry, then the commit
    #: that releases the contact's claim): whoever runs the service must write them (``Held.stage``).
    held: tuple[Held, ...] = ()


class EmailChangeConflict(KtsyncError):
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
    alarms: Alarms = field(default_factory=Alarms)


@dataclass(frozen=True)
class _Applied:
    klicktipp_id: str
    subscription: str
    tags: frozenset[str]
    #: The account's tags (name -> id) the calls were made with: the ids the state keeps.
    tag_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Added:
    """What add-or-update gave: the contact, whether it is a ``GET`` answer, the tag sent along."""

    subscriber: Subscriber
    read: bool = False
    tagid: str | None = None


def listid_of(source: SourceSettings) -> int:
    """The source's opt-in process; never None, or KlickTipp would pick its default double opt-in."""
    if source.listid is None:  # preflight refuses this already
        raise MappingConfigError(f"sources.{source.name}.listid: {LISTID_MISSING}")
    return source.listid


class ContactSync:
    """The I/O shell around the pure planning functions of ``worker.sync``."""

    def __init__(self, deps: SyncDeps, notify: Notify | None = None) -> None:
        self._client, self._reference, self._state = deps.client, deps.reference, deps.state
        self._outbound, self._settings = deps.outbound, deps.settings
        self._clock, self._alarms = deps.clock, deps.alarms
        self._notify = notify
        self._contact_tags = ContactTags(deps.client, deps.reference)

    def desired(self, event: ContactUpsert, source: SourceSettings) -> Desired:
        """Map the event; raises MappingError (bad values) or MappingConfigError (bad mapping)."""
        mapped = map_contact(
            crm_contact_id=event.crm_contact_id,
            email=event.email,
            sms_number=event.sms_number,
            properties=event.properties,
            mapping=self._mapping(source),
        )
        return Desired(
            mapped.email, mapped.sms_number, mapped.fields, desired_tags(event.properties, source.tag_rules)
        )

    def _mapping(self, source: SourceSettings) -> ResolvedMapping:
        """The source's mapping against the account's fields; a field gone (deleted in KlickTipp) is a
        configuration problem: ``MappingConfigError`` naming it, and an ALARM in the log."""
        try:
            return resolve_mapping(source, self._reference.fields())
        except MappingConfigError as exc:
            self._alarms.say(
                f"config:{exc}",
                "ALARM: the configuration no longer fits the KlickTipp account (a data field deleted "
                "there?): %s. Contacts of source %s are dead-lettered as 'config' until the mapping is "
                "fixed: see `ktsync check`, then `ktsync dlq replay --reason config`.",
                exc,
                source.name,
            )
            raise

    def upsert(self, event: ContactUpsert) -> SyncOutcome:
        source = self._settings.source(event.source)
        listid_of(source)  # never let KlickTipp pick its default double opt-in
        desired = self.desired(event, source)
        if event.dry_run:
            return self.preview(event)
        lease = self._settings.sync.lock_lease
        with claimed(
            self._state, source.name, event.crm_contact_id, event.event_id, lease=lease, wait=LOCK_WAIT
        ) as claim:
            stored = claim.stored
            skip = skip_reason(occurred_at=event.occurred_at, stored=stored, desired_hash=desired.state_hash, duplicate=claim.seen)  # fmt: skip
            if skip is Skip.UNCHANGED and stored is not None and self._lost_tags(stored):
                skip = None  # unchanged, but a tag it carried was deleted in KlickTipp: tag it again
            if skip is not None:
                return self._skipped(skip, event, claim)
            applied, desired = self._apply_with_refresh(event, desired, stored, source)
            held = self._remember(event, source, desired, applied, claim)
        status = "unsubscribed" if applied.subscription == "unsubscribed" else "synced"
        return SyncOutcome(status, applied.klicktipp_id, held=held)

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
        current = stored.carried(known) if known_contact and stored else frozenset()
        tagid = None if known_contact else first_tag(desired.tags, current, tag_ids)
        identity = identity_call(desired, stored, listid=listid_of(source), tagid=tagid)
        after = current | ({n for n, i in tag_ids.items() if i == tagid} if tagid else set())
        email = desired.email or (stored.email if stored else None)
        tags = tag_calls(email=email, desired=desired.tags, current=frozenset(after), tag_ids=tag_ids)
        return (*creates, *([identity] if identity else []), *tags)

    def _skipped(self, skip: Skip, event: ContactUpsert, claim: Claim) -> SyncOutcome:
        stored = claim.stored
        held: tuple[Held, ...] = ()
        if skip is Skip.UNCHANGED and stored is not None:
            # Nothing to send, but later events older than this one are now stale.
            refreshed = replace(stored, occurred_at=event.occurred_at, updated_at=self._clock())
            held = (self._state.hold(claim, refreshed, event=self._event(event)),)
        log.info("skipped %s event for %s/%s", skip.value, event.source, event.crm_contact_id)
        return SyncOutcome(skip.value, stored.klicktipp_id if stored else None, held=held)

    def _apply_with_refresh(
        self, event: ContactUpsert, desired: Desired, stored: ContactState | None, source: SourceSettings
    ) -> tuple[_Applied, Desired]:
        """Apply, and once more when the cached reference data named what KlickTipp no longer has.

        A list or tag refused on add-or-update: read that kind again (a deleted tag is created
        anew). A refused value: read the fields again — a mapped field deleted in KlickTipp makes
        the mapping fail (``MappingConfigError``, an ALARM); a field re-created under its label
        maps to its new key and is applied once more; otherwise the value itself was refused.
        """
        try:
            return self._apply(desired, stored, source), desired
        except ReferenceNotFound as exc:
            if exc.operation != "api.subscriber.create":
                raise
            kind = {"tag": "tags", "list": "lists"}.get(exc.kind or "")
            log.warning(
                "KlickTipp refused a %s it no longer has; reading them again", exc.kind or "reference"
            )
            self._reference.invalidate(*(kind,) if kind else ())
            return self._apply(desired, stored, source), desired
        except ValidationError:
            self._reference.invalidate("fields")
            fresh = self.desired(event, source)
            if fresh.fields == desired.fields:
                raise
            log.warning("the mapped data fields changed in KlickTipp; applying again")
            return self._apply(fresh, stored, source), fresh

    def _apply(self, desired: Desired, stored: ContactState | None, source: SourceSettings) -> _Applied:
        tag_ids = {**self._reference.tags(), **self._reference.ensure_tags(desired.tags)}
        if stored and stored.klicktipp_id and not stored.is_tombstone:
            kt_id = self._update(desired, stored)
            if kt_id is not None:
                applied = _Applied(kt_id, stored.subscription, stored.carried(tag_ids), tag_ids)
                return self._apply_tags(desired, stored.email, applied, tag_ids)
            stored = None  # the stored id is gone in KlickTipp: add-or-update by e-mail below
        added = self._add_or_update(desired, source, tag_ids)
        subscriber = added.subscriber
        current = self._contact_tags.owned(
            subscriber, source.tag_prefix, read=added.read, ignore=desired.tags
        ) | {name for name, tag_id in tag_ids.items() if tag_id == added.tagid}
        applied = _Applied(subscriber.id, subscriber.subscription.value, current, tag_ids)
        return self._apply_tags(desired, subscriber.email, applied, tag_ids)

    def _update(self, desired: Desired, stored: ContactState) -> str | None:
        """Update by id; None when KlickTipp no longer has that id."""
        call = identity_call(desired, stored, listid=None, tagid=None)
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

    def _lost_tags(self, stored: ContactState) -> bool:
        return stored.carried(self._reference.tags()) != stored.tags

    def _exists(self, klicktipp_id: str) -> bool:
        try:
            self._client.subscriber_get(klicktipp_id)
        except NotFound:
            return False
        return True

    def _add_or_update(self, desired: Desired, source: SourceSettings, tag_ids: Mapping[str, str]) -> _Added:
        tagid = first_tag(desired.tags, frozenset(), tag_ids)
        call = identity_call(desired, None, listid=listid_of(source), tagid=tagid)
        if call is None:  # identity_call always adds a contact that has no KlickTipp id stored
            raise RuntimeError("no add-or-update planned for a contact without a KlickTipp id")
        try:
            return _Added(self._client.subscriber_create(**call.args), tagid=tagid)
        except (UnsubscribedError, SubscriptionNotFound) as refusal:
            return _Added(self._adopt_unsubscribed(desired, refusal), read=True)

    def _adopt_unsubscribed(self, desired: Desired, refusal: Rejected) -> Subscriber:
        """KlickTipp refused add-or-update because the contact unsubscribed: update it by id instead.

        Error 4 is ambiguous (KLICKTIPP_API.md §4.3: "subscription not found", formerly "unsubscribed"):
        the contact's own status decides, and a contact that did not unsubscribe keeps the refusal."""
        kt_id = self._client.subscriber_search(desired.email or "") if desired.email else None
        if kt_id is None:
            raise refusal
        subscriber = self._client.subscriber_get(kt_id)
        if (
            isinstance(refusal, SubscriptionNotFound)
            and subscriber.subscription is not SubscriptionStatus.UNSUBSCRIBED
        ):
            raise refusal
        self._client.subscriber_update(kt_id, fields=dict(desired.fields))
        return subscriber

    def _apply_tags(
        self, desired: Desired, email: str | None, applied: _Applied, tag_ids: Mapping[str, str]
    ) -> _Applied:
        address = desired.email or email
        if not address:
            if desired.tags != applied.tags:
                log.warning(
                    "contact %s has no e-mail address; KlickTipp tags by e-mail only", applied.klicktipp_id
                )
            return applied
        try:
            tag_ids = self._retag(address, desired.tags, applied.tags, tag_ids)
        except (UnsubscribedError, NotSubscribedError):
            log.info("KlickTipp does not allow tagging contact %s in its state", applied.klicktipp_id)
            return applied
        return _Applied(applied.klicktipp_id, applied.subscription, desired.tags, tag_ids)

    def _retag(
        self, address: str, desired: frozenset[str], current: frozenset[str], tag_ids: Mapping[str, str]
    ) -> Mapping[str, str]:
        """The tag calls from ``current`` to ``desired``; a tag deleted in KlickTipp meanwhile (403, or
        error 7 "unknown mail / tag") is created again, once across all workers, and the rest applied.
        Returns the tags (name -> id) as they were when the calls succeeded."""
        for last_try in (False, True):
            for call in tag_calls(email=address, desired=desired, current=current, tag_ids=tag_ids):
                try:
                    self._run_tag_call(call)
                except (ReferenceNotFound, ContactOrTagNotFound) as exc:
                    if last_try or (isinstance(exc, ReferenceNotFound) and exc.kind not in (None, "tag")):
                        raise
                    tag_ids = self._tags_after(exc, call, desired)
                    break  # plan the rest again with the tags as they are now
                current = applied_tags(call, current, tag_ids)
            else:
                return tag_ids
        raise AssertionError("unreachable: the last try returns or raises")

    def _tags_after(self, exc: Rejected, call: Call, desired: frozenset[str]) -> dict[str, str]:
        """Tag name -> id read again after KlickTipp refused ``call``'s tags; re-creates desired ones."""
        fresh = self._reference.refresh("tags")  # KlickTipp's own list, shared with every worker
        gone = tag_ids_of(call) - set(fresh.values())
        if not gone:
            if isinstance(exc, ContactOrTagNotFound):  # every tag exists: it is the address
                raise exc.recast(
                    ContactNotFound, f"{exc.message}: no contact has this address (its tags exist)"
                )
            raise exc
        log.warning("tag id(s) %s no longer exist in KlickTipp (deleted there?): creating what is needed again",
                    ", ".join(sorted(gone)))  # fmt: skip
        return {**fresh, **self._reference.ensure_tags(desired)}

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
    ) -> tuple[Held, ...]:
        """The state to keep, held with its outbound entry for the task's closing round trip."""
        now = self._clock()
        known = applied.tag_ids
        state = ContactState(
            source=source.name,
            crm_contact_id=event.crm_contact_id,
            klicktipp_id=applied.klicktipp_id,
            email=desired.email,
            sms_number=desired.sms_number,
            fields_hash=desired.fields_hash,
            state_hash=desired.state_hash if applied.tags == desired.tags else None,
            tags=applied.tags,
            tag_ids=frozenset(known[name] for name in applied.tags if name in known),
            occurred_at=event.occurred_at,
            subscription=applied.subscription,
            updated_at=now,
        ).with_erasure_of(claim.stored)  # a contact back after an erasure keeps that history
        # Published while the contact's claim is held (the commit releases it; both go in one MULTI):
        # an erasure, which claims the contact before it purges the stream, can never run between the
        # two and leave this entry with the address behind. A failed commit retries the task: at least
        # once.
        entry = self._publish(source, state, event)
        return entry, self._state.hold(claim, state, event=self._event(event))

    def _event(self, event: ContactUpsert) -> tuple[str, int] | None:
        """The event to remember as applied (for duplicates), if it has an id."""
        return (event.event_id, self._settings.sync.event_id_ttl) if event.event_id else None

    def _publish(self, source: SourceSettings, state: ContactState, event: ContactUpsert) -> Held:
        """Tell the CRM side the KlickTipp id and subscription status (guide steps 8 and 12): the
        callback at once, the outbound entry held for the closing round trip."""
        payload = {
            "source": state.source,
            "crm_contact_id": state.crm_contact_id,
            "klicktipp_id": state.klicktipp_id,
            "email": state.email,
            "subscription": state.subscription,
            "applied_at": state.updated_at,
            "event_id": event.event_id,
        }
        if source.callback_url and self._notify is not None:
            self._notify(source, payload)
        return self._outbound.hold("contact.synced", payload)
