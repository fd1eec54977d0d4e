"""Turn one validated contact event into the KlickTipp calls that bring the contact up to date."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from config.settings import LISTID_MISSING, Settings, SourceSettings
from ktsync.contract import ContactUpsert
from worker.klicktipp.client import KlickTippClient
from worker.reference import ReferenceData
from worker.sync.mapping import MappingConfigError, ResolvedMapping, map_contact, resolve_mapping
from worker.sync.segments import desired_tags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    status: str
    klicktipp_id: str
    tags: tuple[str, ...] = ()


class SyncService:
    """The sync logic's I/O shell: resolves reference data, maps, and calls KlickTipp."""

    def __init__(self, client: KlickTippClient, reference: ReferenceData, settings: Settings) -> None:
        self._client = client
        self._reference = reference
        self._settings = settings

    def mapping_for(self, source: SourceSettings) -> ResolvedMapping:
        """The source's mapping resolved against the account's field index (cheap: a dict pass)."""
        return resolve_mapping(source, self._reference.fields())

    def upsert(self, event: ContactUpsert) -> SyncOutcome:
        """Add or update the contact with the source's opt-in process, then tag it."""
        source = self._settings.source(event.source)
        if source.listid is None:  # preflight refuses this; never let KlickTipp pick its default DOI
            raise MappingConfigError(f"sources.{source.name}.listid: {LISTID_MISSING}")
        mapped = map_contact(
            crm_contact_id=event.crm_contact_id,
            email=event.email,
            sms_number=event.sms_number,
            properties=event.properties,
            mapping=self.mapping_for(source),
        )
        tag_ids = self._reference.ensure_tags(desired_tags(event.properties, source.tag_rules))
        ordered = sorted(tag_ids.values(), key=int)
        subscriber = self._client.subscriber_create(
            email=mapped.email,
            smsnumber=mapped.sms_number,
            listid=source.listid,
            tagid=ordered[0] if ordered else None,
            fields=dict(mapped.fields),
        )
        missing = [tag for tag in ordered if tag not in subscriber.tags]
        address = subscriber.email or mapped.email
        if missing and address:
            self._client.subscriber_tag(address, missing)
        elif missing:
            log.warning("contact %s has no email address; KlickTipp tags by email only", subscriber.id)
        return SyncOutcome(status="synced", klicktipp_id=subscriber.id, tags=tuple(sorted(tag_ids)))
