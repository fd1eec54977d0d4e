"""KlickTipp's side of an erasure: what it knows of a person, and deleting its contacts (gone is done)."""

from __future__ import annotations

from typing import Protocol

from ktsync.worker.erasure.plan import Subject
from ktsync.worker.klicktipp.errors import ContactNotFound, NotFound, Rejected
from ktsync.worker.klicktipp.models import Subscriber


class People(Protocol):
    """The KlickTipp operations an erasure needs (:class:`~ktsync.worker.klicktipp.client.KlickTippClient`)."""

    def subscriber_get(self, subscriber_id: str) -> Subscriber: ...

    def subscriber_search(self, email: str) -> str | None: ...

    def subscriber_delete(self, subscriber_id: str) -> None: ...


def ask(people: People, fresh: Subject, gone: set[str]) -> tuple[Subject, Subject]:
    """Read each KlickTipp id (its address), search each address (its id); ids KlickTipp no longer has
    go to ``gone``. Returns what was learnt, and what needs no asking any more (the addresses of the
    contacts read, the ids a search found)."""
    ids: set[str] = set()
    read: set[str | None] = set()
    for kt_id in sorted(fresh.klicktipp_ids):
        try:
            subscriber = people.subscriber_get(kt_id)
        except NotFound:
            gone.add(kt_id)
            continue
        ids.add(subscriber.id)
        read.add(subscriber.email)
    known = Subject.of(emails=read)
    found = [people.subscriber_search(email) for email in sorted(fresh.emails - known.emails)]
    ids.update(kt_id for kt_id in found if kt_id)
    return Subject.of(emails=read, klicktipp_ids=ids), Subject.of(emails=read, klicktipp_ids=found)


def delete(people: People, kt_id: str) -> bool:
    """Delete the KlickTipp contact; False when it was gone already."""
    try:
        people.subscriber_delete(kt_id)
    except (NotFound, ContactNotFound):
        return False
    except Rejected as exc:
        if type(exc) is not Rejected:
            raise
        try:  # a bare 406 ("the contact does not exist") for an id deleted meanwhile
            people.subscriber_get(kt_id)
        except NotFound:
            return False
        raise
    return True
