"""The I/O shell of a privacy deletion (GDPR erasure): find, delete in KlickTipp, purge, leave tombstones.

One erasure: survey every store for the person (:mod:`ktsync.worker.erasure.plan` decides what is
theirs), claim each of their CRM contacts (no task of theirs runs meanwhile), ask KlickTipp (a known
id gives the contact's address, an address its id), survey again with what was learnt, delete the
KlickTipp contacts (already gone is done), remove every doomed item, write one tombstone per CRM
contact (ids and times; this releases the claims) and tell the CRM side (``contact.erased``, ids only).

Every step is idempotent, and nothing is removed before KlickTipp has answered: a failure on the way
leaves a retry (or a rerun) everything to do again. Messages still in the broker (queued, or deferred
for the rate budget in a key queue) are not rewritten: when they run they are older than the erasure
and skipped as stale against the tombstone.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ktsync.worker.deadletter import DeadLetterStore, Filter
from ktsync.worker.erasure.people import People, ask, delete
from ktsync.worker.erasure.plan import (
    DEAD_LETTERS,
    KEYS,
    OUTBOUND,
    PARKED,
    REVIEW,
    TIMELINES,
    Contact,
    ErasureReport,
    Item,
    Subject,
    about,
    doomed,
    widen,
)
from ktsync.worker.erasure.timelines import Timelines
from ktsync.worker.outbound import Outbound
from ktsync.worker.review import ReviewList
from ktsync.worker.schedule import Parked, Schedule
from ktsync.worker.state.base import Claim, ContactState, StateStore, claimed

log = logging.getLogger(__name__)

ERASED = "contact.erased"  # the outbound entry type
MAX_ROUNDS = 5  # of widening the subject: each round may learn a contact, an address or a KlickTipp id
LOCK_WAIT = 2.0  # seconds to wait for a contact's running task (then LockBusy: the task is requeued)
READ_LIMIT = 10_000_000  # items read per store: all of them (the stores are bounded far below)


class AddressKeys(Protocol):
    """A store whose keys may name an address (the webhook dedupe ids)."""

    def forget(self, addresses: Collection[str]) -> int: ...


@dataclass(frozen=True)
class ErasureStores:
    state: StateStore
    dead_letters: DeadLetterStore
    review: ReviewList
    outbound: Outbound
    schedule: Schedule
    timelines: Timelines
    dedupe: AddressKeys | None = None


@dataclass(frozen=True)
class Survey:
    """What ktsync holds about a subject (read only): the widened subject, its state records, the
    keys of the items to remove per store."""

    subject: Subject
    stored: Mapping[Contact, ContactState]
    doomed: Mapping[str, tuple[str, ...]]


class Eraser:
    def __init__(
        self, people: People, stores: ErasureStores, *, lease: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._people, self._stores, self._lease, self._clock = people, stores, lease, clock

    def survey(self, subject: Subject) -> Survey:
        """What ktsync holds about the subject; reads its stores only (no KlickTipp call)."""
        items = self._items()
        subject, stored = self._resolve(subject, [item.record for item in items])
        return Survey(subject, stored, doomed(subject, items))

    def erase(self, subject: Subject, *, requested_at: float, by: str) -> ErasureReport:
        """Erase the person everywhere (see the module docstring); ``by``: what asked for it."""
        with ExitStack() as stack:
            claims: dict[Contact, Claim] = {}
            survey, gone = self._learn(stack, claims, subject)
            live = sorted(survey.subject.klicktipp_ids - gone)
            deleted = [kt_id for kt_id in live if delete(self._people, kt_id)]
            gone.update(set(live) - set(deleted))
            removed = self._purge(survey)
            now = self._clock()
            tombstones = self._bury(claims, survey.subject, requested_at=requested_at, now=now, by=by)
        self._announce(tombstones, survey.subject, requested_at=requested_at, now=now, by=by)
        report = ErasureReport(
            contacts=tuple(f"{t.source}/{t.crm_contact_id}" for t in tombstones),
            klicktipp_deleted=tuple(deleted),
            klicktipp_gone=tuple(sorted(gone)),
            removed=removed,
            requested_at=requested_at,
            erased_at=now,
            by=by,
        )
        log.info(
            "erased %s: KlickTipp %s deleted, %s already gone; removed %s",
            ", ".join(report.contacts) or "-",
            ", ".join(deleted) or "-",
            ", ".join(report.klicktipp_gone) or "-",
            removed,
        )
        return report

    # -- reading ---------------------------------------------------------------------------------

    def _items(self) -> list[Item]:
        s = self._stores
        items = [
            Item(DEAD_LETTERS, d.id, d.message if isinstance(d.message, Mapping) else {}, d.to_dict())
            for d in s.dead_letters.list(Filter(), READ_LIMIT)
        ]
        items += [Item(REVIEW, str(entry["id"]), entry, entry) for entry in s.review.list()]
        items += [Item(OUTBOUND, i, p, p) for i, kind, p in s.outbound.entries() if kind != ERASED]
        items += [
            Item(PARKED, e.to_json(), e.message, list(e.args)) for e in s.schedule.due(math.inf, READ_LIMIT)
        ]
        return items

    def _resolve(
        self, subject: Subject, records: list[Mapping[str, Any]]
    ) -> tuple[Subject, dict[Contact, ContactState]]:
        """Widen the subject with the records and the state records it leads to."""
        stored: dict[Contact, ContactState] = {}
        looked = Subject()
        for _ in range(MAX_ROUNDS):
            for state in self._lookup(subject, looked):
                if about(subject, _record_of(state)):
                    stored[(state.source, state.crm_contact_id)] = state
            looked = subject
            grown = widen(subject, [*records, *(_record_of(s) for s in stored.values())])
            if grown == subject:
                break
            subject = grown
        return subject, stored

    def _lookup(self, subject: Subject, looked: Subject) -> Iterable[ContactState]:
        state = self._stores.state
        for contact in sorted(subject.contacts - looked.contacts):
            found = state.get(*contact)
            if found is not None:
                yield found
        for email in sorted(subject.emails - looked.emails):
            if (found := state.find(email=email)) is not None:
                yield found
        for kt_id in sorted(subject.klicktipp_ids - looked.klicktipp_ids):
            if (found := state.find(klicktipp_id=kt_id)) is not None:
                yield found

    def _claim(self, stack: ExitStack, claims: dict[Contact, Claim], contacts: Iterable[Contact]) -> None:
        for contact in sorted(set(contacts) - claims.keys()):
            claims[contact] = stack.enter_context(
                claimed(self._stores.state, *contact, None, lease=self._lease, wait=LOCK_WAIT)
            )

    def _learn(
        self, stack: ExitStack, claims: dict[Contact, Claim], subject: Subject
    ) -> tuple[Survey, set[str]]:
        """Survey under the contacts' claims, widened by what KlickTipp says, until nothing new is
        learnt; the survey, and the KlickTipp ids found gone."""
        self._claim(stack, claims, subject.contacts)
        survey = self.survey(subject)
        self._claim(stack, claims, survey.subject.contacts)
        asked, gone = Subject(), set[str]()
        for _ in range(MAX_ROUNDS):
            fresh = Subject(
                frozenset(),
                survey.subject.emails - asked.emails,
                survey.subject.klicktipp_ids - asked.klicktipp_ids,
            )
            if not fresh:
                break
            learned, seen = ask(self._people, fresh, gone)
            asked = asked | fresh | seen
            if (
                not learned.emails <= survey.subject.emails
                or not learned.klicktipp_ids <= survey.subject.klicktipp_ids
            ):
                survey = self.survey(survey.subject | learned)
                self._claim(stack, claims, survey.subject.contacts)
        return survey, gone

    # -- writing ---------------------------------------------------------------------------------

    def _purge(self, survey: Survey) -> dict[str, int]:
        s, keys, emails = self._stores, survey.doomed, survey.subject.emails
        for entry in keys[PARKED]:
            s.schedule.remove(Parked.from_json(entry))
        return {
            DEAD_LETTERS: s.dead_letters.remove_many(keys[DEAD_LETTERS]),
            REVIEW: s.review.remove_many(keys[REVIEW]),
            OUTBOUND: s.outbound.delete(keys[OUTBOUND]),
            PARKED: len(keys[PARKED]),
            TIMELINES: sum(s.timelines.forget(contact) for contact in sorted(survey.subject.contacts)),
            KEYS: s.state.forget_addresses(emails) + (s.dedupe.forget(emails) if s.dedupe else 0),
        }

    def _bury(
        self, claims: Mapping[Contact, Claim], subject: Subject, *, requested_at: float, now: float, by: str
    ) -> list[ContactState]:
        """One tombstone per CRM contact (committing releases its claim)."""
        sole = next(iter(subject.klicktipp_ids)) if len(subject.klicktipp_ids) == 1 else None
        tombstones = []
        for contact, claim in sorted(claims.items()):
            base = claim.stored or ContactState(source=contact[0], crm_contact_id=contact[1])
            tombstone = base.erased(requested_at=requested_at, now=now, by=by)
            tombstone = tombstone if tombstone.klicktipp_id else replace(tombstone, klicktipp_id=sole)
            self._stores.state.commit(claim, tombstone)
            tombstones.append(tombstone)
        return tombstones

    def _announce(
        self, tombstones: list[ContactState], subject: Subject, *, requested_at: float, now: float, by: str
    ) -> None:
        """Tell the CRM side, in ids and times: one entry per tombstone (or per KlickTipp id without one)."""
        ids: list[tuple[str | None, str | None, str | None]] = [
            (t.source, t.crm_contact_id, t.klicktipp_id) for t in tombstones
        ] or [(None, None, k) for k in sorted(subject.klicktipp_ids)]
        for source, crm_contact_id, kt_id in ids:
            entry = {"source": source, "crm_contact_id": crm_contact_id, "klicktipp_id": kt_id,
                     "requested_at": requested_at, "erased_at": now, "by": by}  # fmt: skip
            self._stores.outbound.publish(ERASED, entry)


def _record_of(state: ContactState) -> dict[str, Any]:
    return {
        "source": state.source,
        "crm_contact_id": state.crm_contact_id,
        "email": state.email,
        "klicktipp_id": state.klicktipp_id,
    }
