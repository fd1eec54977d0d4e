"""JSON shapes built from the state: the API's subscriber object and the control endpoint's dump.

The subscriber object carries every key of the spec's ``SubscriberDetailSchema``: all values are
strings, dates are ``d.m.Y H:i:s`` (UTC), tag maps are ``{id: "unix ts"}``, every data field of the
account is present (``""`` when unset). The options ``sms_null_when_absent``, ``omit_tag_maps`` and
``api_ip_when_pending`` turn it into the recorded object (KLICKTIPP_API.md §11).
"""

from __future__ import annotations

import time
from typing import Any, Final

from fake_klicktipp.model import Contact, State
from fake_klicktipp.options import Options

STATUS_LABELS: Final = {
    "subscribed": "Subscribed",
    "pending": "Opt-In Pending",
    "unsubscribed": "Unsubscribed",
}
BOUNCE_LABELS: Final = {
    "nobounce": "Not Bounced",
    "softbounce": "Soft Bounce",
    "hardbounce": "Hard Bounce",
    "spambounce": "Spam Bounce",
}
API_IP: Final = "0.0.0.0 - By API Request"
NO_IP: Final = "0.0.0.0"  # noqa: S104
_EMPTY_MAPS: Final = (
    "notification_emails_sent",
    "notification_emails_opened",
    "notification_emails_clicked",
    "emails_sent",
    "emails_opened",
    "emails_clicked",
    "campaigns_started",
    "campaigns_finished",
)


def format_date(ts: int | None) -> str:
    """``d.m.Y H:i:s`` in UTC, ``""`` for no date."""
    return "" if ts is None else time.strftime("%d.%m.%Y %H:%M:%S", time.gmtime(ts))


def _sms_keys(contact: Contact, *, null_when_absent: bool) -> dict[str, Any]:
    if not contact.sms_phone:
        empty = None if null_when_absent else ""
        return {
            "sms_phone": empty,
            "sms_status": empty,
            "sms_bounce": empty,
            "sms_date": "",
            "sms_unsubscription": "",
            "sms_referrer": None,
        }
    return {
        "sms_phone": contact.sms_phone,
        "sms_status": "Subscribed",
        "sms_bounce": "Not Bounced",
        "sms_date": format_date(contact.created),
        "sms_unsubscription": "",
        "sms_referrer": "",
    }


def subscriber_object(contact: Contact, state: State, options: Options) -> dict[str, Any]:
    """The full subscriber object of ``GET /subscriber/{id}`` and ``POST /subscriber``."""
    subscribed = contact.confirmed is not None and contact.status != "pending"
    body: dict[str, Any] = {
        "id": str(contact.id),
        "listid": str(contact.listid),
        "optin": format_date(contact.created),
        "optin_ip": API_IP,
        "email": contact.email,
        "status": STATUS_LABELS[contact.status],
        "bounce": BOUNCE_LABELS[contact.bounce],
        "date": format_date(contact.confirmed) if subscribed else "",
        "ip": API_IP if subscribed or options.api_ip_when_pending else NO_IP,
        "unsubscription": format_date(contact.unsubscribed) if contact.status == "unsubscribed" else "",
        "unsubscription_ip": NO_IP,
        "referrer": "",
        **_sms_keys(contact, null_when_absent=options.sms_null_when_absent),
    }
    body.update({key: contact.fields.get(key, "") for key in state.fields})
    if not options.omit_tag_maps:
        body["tags"] = [str(t) for t in contact.tags]
        body["smart_tags"] = {str(t): str(ts) for t, ts in contact.tags.items() if _is_smart(state, t)}
        body["manual_tags"] = {str(t): str(ts) for t, ts in contact.tags.items() if not _is_smart(state, t)}
    body.update({key: {} for key in _EMPTY_MAPS})
    return body


def contact_dump(contact: Contact, state: State) -> dict[str, Any]:
    """A contact for ``GET /_fake/state``: raw values, timestamps as unix seconds."""
    return {
        "id": contact.id,
        "key": contact.key,
        "email": contact.email,
        "sms_phone": contact.sms_phone,
        "listid": contact.listid,
        "status": contact.status,
        "bounce": contact.bounce,
        "created": contact.created,
        "confirmed": contact.confirmed,
        "unsubscribed": contact.unsubscribed,
        "fields": {key: value for key, value in contact.fields.items() if value != ""},
        "manual_tags": {str(t): ts for t, ts in contact.tags.items() if not _is_smart(state, t)},
        "smart_tags": {str(t): ts for t, ts in contact.tags.items() if _is_smart(state, t)},
    }


def _is_smart(state: State, tag_id: int) -> bool:
    tag = state.tags.get(tag_id)
    return tag is not None and tag.smart


def state_dump(state: State) -> dict[str, Any]:
    """Contacts, tags, lists, fields and the recorded confirmation emails."""
    return {
        "contacts": [contact_dump(c, state) for c in state.contacts.values()],
        "tags": [{"id": t.id, "name": t.name, "text": t.text, "smart": t.smart} for t in state.tags.values()],
        "lists": [
            {
                "id": o.id,
                "name": o.name,
                "single_opt_in": o.single_opt_in,
                "default": o.id == state.default_list_id,
            }
            for o in state.lists.values()
        ],
        "fields": [{"key": f.key, "label": f.label, "type": f.type} for f in state.fields.values()],
        "doi_emails": [
            {"contact_id": m.contact_id, "email": m.email, "listid": m.listid, "at": m.at}
            for m in state.doi_mails
        ],
    }
