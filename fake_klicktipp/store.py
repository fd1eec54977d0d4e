"""Business rules for contacts: upsert, update by id, delete, unsubscribe, tag/untag, search, listings.

Every operation validates all its input before it changes anything, so a refused call leaves the
state untouched. Rules (KLICKTIPP_API.md §3, §10.5-§10.12):

* Email and SMS number are unique; emails match case-insensitively, SMS numbers are stored ``0049…``.
* ``upsert`` matches by email, else by SMS number. A new contact is ``subscribed`` on a single-opt-in
  process and ``pending`` on a DOI process (the default DOI when no ``listid`` is given).
* A confirmation email is recorded at most once per 24 h per (contact, process), never for a contact
  that has confirmed once ("confirmed once, confirmed everywhere").
* An unsubscribed email cannot be re-subscribed (``ContactUnsubscribed``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from fake_klicktipp.catalog import Catalog
from fake_klicktipp.errors import (
    ContactUnsubscribed,
    EmailRequired,
    Msg,
    Refused,
    Rejected,
    SearchMiss,
    UnknownTag,
)
from fake_klicktipp.fields import validate_fields
from fake_klicktipp.fieldtypes import InvalidValue, normalize_sms_number
from fake_klicktipp.model import Contact, DoiMail, OptInProcess, State, contact_key, email_key

CONFIRMATION_LOCK_SECONDS: Final = 86_400
DEFAULT_STATUSES: Final = frozenset({"subscribed"})
DEFAULT_BOUNCES: Final = frozenset({"nobounce", "softbounce", "spambounce"})


@dataclass(frozen=True)
class Subscription:
    """The input of ``POST /subscriber``."""

    email: str | None = None
    sms_number: str | None = None
    listid: int | None = None
    tagid: int | None = None
    fields: object = None


@dataclass(frozen=True)
class ContactChange:
    """The input of ``PUT /subscriber/{id}``."""

    new_email: str | None = None
    new_sms_number: str | None = None
    fields: object = field(default=None)


def should_send_confirmation(*, last_sent: int | None, ever_confirmed: bool, now: int) -> bool:
    """The DOI anti-abuse lock: one mail per day per process, none once the contact ever confirmed."""
    if ever_confirmed:
        return False
    return last_sent is None or now - last_sent >= CONFIRMATION_LOCK_SECONDS


def clean_email(raw: str | None) -> str | None:
    """A trimmed email address, ``None`` when absent; 406 error 10 code 5 when it has no ``@``."""
    if raw is None or raw.strip() == "":
        return None
    email = raw.strip()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or " " in email:
        raise Rejected(10, 5)
    return email


def clean_sms(raw: str | None) -> str | None:
    """An SMS number stored as ``0049…``, ``None`` when absent; 406 error 10 code 11 when invalid."""
    if raw is None or raw.strip() == "":
        return None
    try:
        return normalize_sms_number(raw)
    except InvalidValue as exc:
        raise Rejected(10, 11) from exc


class Store:
    """Contact operations on one ``State``; tag, list and field lookups go through ``Catalog``."""

    def __init__(self, state: State, catalog: Catalog) -> None:
        self._state = state
        self._catalog = catalog

    # -- lookups -------------------------------------------------------------------------------
    def by_ref(self, ref: str) -> Contact | None:
        """A contact by numeric id or by Contact Key."""
        contact_id = int(ref) if ref.isdigit() else self._state.by_key.get(ref)
        return None if contact_id is None else self._state.contacts.get(contact_id)

    def by_email(self, email: str) -> Contact | None:
        """A contact by email address (case-insensitive)."""
        contact_id = self._state.by_email.get(email_key(email))
        return None if contact_id is None else self._state.contacts[contact_id]

    def search(self, email: str) -> int:
        """``POST /subscriber/search``: the id, or 404."""
        contact = self.by_email(email)
        if contact is None:
            raise SearchMiss()
        return contact.id

    def index(self, statuses: Collection[str], bounces: Collection[str]) -> list[int]:
        """Ids of the contacts whose status and bounce state pass the filters, ascending."""
        return sorted(
            c.id for c in self._state.contacts.values() if c.status in statuses and c.bounce in bounces
        )

    def tagged(self, tag_id: int, statuses: Collection[str], bounces: Collection[str]) -> dict[int, int]:
        """Id → tagging time of the filtered contacts carrying ``tag_id`` (empty for unknown tags)."""
        return {
            c.id: c.tags[tag_id]
            for c in self._state.contacts.values()
            if tag_id in c.tags and c.status in statuses and c.bounce in bounces
        }

    # -- writes --------------------------------------------------------------------------------
    def upsert(self, sub: Subscription, now: int) -> Contact:
        """``POST /subscriber``: create or update, run the opt-in process, optionally tag."""
        email, sms = clean_email(sub.email), clean_sms(sub.sms_number)
        if email is None and sms is None:
            raise EmailRequired()
        optin = self._catalog.optin_for_subscribe(sub.listid)
        tag = None if sub.tagid is None else self._catalog.assignable_tag(sub.tagid, unknown=Rejected(403))
        values = validate_fields(self._state.fields, sub.fields)
        contact = self._match(email, sms)
        if contact is None:
            contact = self._create(email or "", sms or "", optin, now)
        else:
            self._check_resubscribe(contact, email)
            self._set_channels(contact, email, sms)
            self._run_optin(contact, optin, now)
        contact.fields.update(values)
        if tag is not None:
            contact.tags.setdefault(tag.id, now)
        return contact

    def update(self, ref: str, change: ContactChange) -> None:
        """``PUT /subscriber/{id}``: new email (507 on collision), new SMS number, fields."""
        contact = self._existing(ref)
        email, sms = clean_email(change.new_email), clean_sms(change.new_sms_number)
        if email is not None and self._state.by_email.get(email_key(email), contact.id) != contact.id:
            raise Rejected(507)
        if sms is not None and self._state.by_sms.get(sms, contact.id) != contact.id:
            raise Rejected(10, 9)
        values = validate_fields(self._state.fields, change.fields, on_update=True)
        self._set_channels(contact, email, sms)
        contact.fields.update(values)

    def delete(self, ref: str) -> None:
        """``DELETE /subscriber/{id}``."""
        contact = self._existing(ref)
        self._unindex(contact)
        del self._state.contacts[contact.id]

    def unsubscribe(self, email: str, now: int) -> None:
        """``POST /subscriber/unsubscribe``: 7 for unknown emails, 9 unless subscribed."""
        contact = self._by_email_or_7(email)
        if contact.status != "subscribed":
            raise Rejected(9)
        contact.status = "unsubscribed"
        contact.unsubscribed = now

    def tag(self, email: str, tag_ids: Sequence[int], now: int) -> None:
        """``POST /subscriber/tag``: add manual tags (keeping the first tagging time)."""
        contact = self._by_email_or_7(email)
        tags = [self._catalog.assignable_tag(tag_id, unknown=UnknownTag()) for tag_id in tag_ids]
        for tag in tags:
            contact.tags.setdefault(tag.id, now)

    def untag(self, email: str, tag_id: int) -> None:
        """``POST /subscriber/untag``: ``UnknownTag`` for unknown tags, 31 for SmartTags."""
        contact = self._by_email_or_7(email)
        tag = self._state.tags.get(tag_id)
        if tag is None:
            raise UnknownTag()
        if tag.smart:
            raise Rejected(31)
        contact.tags.pop(tag_id, None)

    # -- helpers -------------------------------------------------------------------------------
    def _existing(self, ref: str) -> Contact:
        contact = self.by_ref(ref)
        if contact is None:
            raise Refused(406, Msg.CONTACT_MISSING)
        return contact

    def _by_email_or_7(self, email: str) -> Contact:
        contact = self.by_email(email)
        if contact is None:
            raise Rejected(7)
        return contact

    def _match(self, email: str | None, sms: str | None) -> Contact | None:
        by_email = self.by_email(email) if email else None
        sms_id = self._state.by_sms.get(sms) if sms else None
        if by_email is not None:
            if sms_id is not None and sms_id != by_email.id:
                raise Rejected(10, 9)
            return by_email
        if sms_id is None:
            return None
        by_sms = self._state.contacts[sms_id]
        if email and by_sms.email:  # the number belongs to a contact with another address
            raise Rejected(10, 9)
        return by_sms

    def _check_resubscribe(self, contact: Contact, email: str | None) -> None:
        if contact.status != "unsubscribed":
            return
        if email is not None:
            raise ContactUnsubscribed()
        raise Rejected(10, 10)

    def _create(self, email: str, sms: str, optin: OptInProcess, now: int) -> Contact:
        contact = Contact(
            id=self._state.next_contact_id,
            email=email,
            sms_phone=sms,
            listid=optin.id,
            status="pending",
            bounce="nobounce",
            created=now,
        )
        self._state.next_contact_id += 1
        self.insert(contact)
        self._run_optin(contact, optin, now)
        return contact

    def insert(self, contact: Contact) -> None:
        """Add a fully built contact (seed loading and creation) and index it."""
        self._state.contacts[contact.id] = contact
        self._state.by_key[contact_key(contact.id)] = contact.id
        if contact.email:
            self._state.by_email[email_key(contact.email)] = contact.id
        if contact.sms_phone:
            self._state.by_sms[contact.sms_phone] = contact.id
        self._state.next_contact_id = max(self._state.next_contact_id, contact.id + 1)

    def _unindex(self, contact: Contact) -> None:
        self._state.by_key.pop(contact_key(contact.id), None)
        self._state.by_email.pop(email_key(contact.email), None)
        self._state.by_sms.pop(contact.sms_phone, None)

    def _set_channels(self, contact: Contact, email: str | None, sms: str | None) -> None:
        if email is not None:
            self._state.by_email.pop(email_key(contact.email), None)
            contact.email = email
            self._state.by_email[email_key(email)] = contact.id
        if sms is not None:
            self._state.by_sms.pop(contact.sms_phone, None)
            contact.sms_phone = sms
            self._state.by_sms[sms] = contact.id

    def _run_optin(self, contact: Contact, optin: OptInProcess, now: int) -> None:
        if contact.status != "pending":
            return
        if optin.single_opt_in:
            contact.status, contact.confirmed, contact.listid = "subscribed", now, optin.id
            return
        self._maybe_send_confirmation(contact, optin, now)

    def _maybe_send_confirmation(self, contact: Contact, optin: OptInProcess, now: int) -> None:
        lock = (contact.id, optin.id)
        last = self._state.last_doi_mail.get(lock)
        if not contact.email or not should_send_confirmation(
            last_sent=last, ever_confirmed=contact.confirmed is not None, now=now
        ):
            return
        self._state.last_doi_mail[lock] = now
        self._state.doi_mails.append(DoiMail(contact.id, contact.email, optin.id, now))
