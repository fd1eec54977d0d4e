"""Which owned tags a KlickTipp contact carries, also when KlickTipp's answer does not say.

The recorded subscriber answers carry neither ``tags`` nor ``manual_tags`` (KLICKTIPP_API.md §3.4):
there, an empty map means "not told", never "no tags", or a contact's outdated ``[CRM]`` tags would
never be removed. So: the answer's tags when it lists them; else the contact read once more
(``GET /subscriber/{id}``); else each owned tag that may have to go confirmed with
``POST /subscriber/tagged``, every status and bounce included (its defaults leave some contacts out).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Final, get_args

from ktsync.worker.klicktipp.client import KlickTippClient
from ktsync.worker.klicktipp.errors import ContactOrTagNotFound, NotFound, ReferenceNotFound
from ktsync.worker.klicktipp.models import BounceFilter, StatusFilter, Subscriber
from ktsync.worker.reference import ReferenceData
from ktsync.worker.sync.plan import owned_names

log = logging.getLogger(__name__)

EVERY_STATUS: Final[tuple[StatusFilter, ...]] = get_args(StatusFilter)
EVERY_BOUNCE: Final[tuple[BounceFilter, ...]] = get_args(BounceFilter)


class ContactTags:
    """Reads the owned tags on a contact with the fewest calls the answers allow."""

    def __init__(self, client: KlickTippClient, reference: ReferenceData) -> None:
        self._client, self._reference = client, reference

    def owned(
        self, subscriber: Subscriber, prefix: str, *, read: bool = False, ignore: Collection[str] = ()
    ) -> frozenset[str]:
        """The owned (``prefix``) tag names on ``subscriber``. ``read``: it already is a fresh
        ``GET`` answer (no second read). ``ignore``: names whose membership does not matter (tags
        about to be added anyway) are not confirmed, and not in the result when unconfirmed."""
        if not subscriber.tags_known and not read:
            subscriber = self._client.subscriber_get(subscriber.id)
        names = self._reference.tag_names()
        if subscriber.tags_known:
            return owned_names(subscriber.tags, names, prefix)
        candidates = sorted(
            (tag_id, name) for tag_id, name in names.items() if name.startswith(prefix) and name not in ignore
        )
        log.info(
            "KlickTipp's answers list no tags for contact %s: confirming %d owned tag(s) one by one",
            subscriber.id,
            len(candidates),
        )
        return frozenset(name for tag_id, name in candidates if self._carries(subscriber.id, tag_id))

    def _carries(self, klicktipp_id: str, tag_id: str) -> bool:
        try:
            tagged = self._client.subscriber_tagged(tag_id, status=EVERY_STATUS, bounce_status=EVERY_BOUNCE)
        except (NotFound, ReferenceNotFound, ContactOrTagNotFound):
            return False  # a tag deleted in KlickTipp since the tags were read: nobody carries it
        return klicktipp_id in tagged
