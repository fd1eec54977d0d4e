"""Close: load one contact and its lead (``GET /api/v1/contact/{id}/``, ``GET /api/v1/lead/{lead_id}/``).

Environment (only ``CLOSE_API_KEY`` is required; without it there is no Close fetcher)::

    CLOSE_API_KEY         API key (HTTP basic auth: the key as user name, empty password)
    CLOSE_API_BASE_URL    default https://api.close.com

Two calls per fetch: the contact, then its lead (company name, status, address live on the lead). The
lead is not cached across fetches: a status change must show on the next event. Properties get
HubSpot-style names so that the default config mapping and tag rules apply unchanged:

    firstname, lastname   from ``name`` (see ``split_name``)
    email                 the first address in Close's order (the one Close shows first), whatever its type
    phone                 the first phone that is not of type ``mobile``
    mobilephone           the first phone of type ``mobile``
    website               the contact's first URL, else the lead's ``url``
    jobtitle              ``title``
    company               the lead's ``display_name``
    hs_lead_status        the lead's ``status_label`` (Close has no lifecycle stage: none is sent)
    city, zip, country    the lead's first address (``city``, ``zipcode``, ``country``)

A missing contact or lead (404) is "no longer in the CRM": deleting a lead deletes its contacts.
Rate limits: ``retry-after`` on 429, else the body's ``rate_reset``, else the ``RateLimit`` header's reset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import requests

from ktsync.core.contract import PropertyValue
from ktsync.worker.crm.base import CrmFetcher, FetchedContact, FetchError
from ktsync.worker.crm.http import (
    DEFAULT_TIMEOUT,
    CrmHttp,
    base_url_from_env,
    decode_json,
    detail,
    error_for_status,
    json_or_none,
    malformed,
    number,
    record_id,
    retry_after,
    text,
)
from ktsync.worker.klicktipp.http import Timeout

SOURCE: Final = "close"
KEY_ENV: Final = "CLOSE_API_KEY"
BASE_URL_ENV: Final = "CLOSE_API_BASE_URL"
DEFAULT_BASE_URL: Final = "https://api.close.com"
CONTACT_FIELDS: Final = "id,lead_id,name,title,emails,phones,urls"
LEAD_FIELDS: Final = "status_label,display_name,url,addresses"
_RESET = re.compile(r"(?:^|[,;\s])reset=([0-9.]+)")


def split_name(name: object) -> tuple[str | None, str | None]:
    """First and last name from Close's single ``name``.

    Split before the last word, but lower-case particles go with the last name (``Ludwig van
    Beethoven``, ``Maria de la Cruz``) and the first word always stays the first name. Leading titles
    ending in a dot are dropped (``Dr. Anna Schmidt``); ``Schmidt, Anna`` is understood. One word is a
    first name only.
    """
    full = text(name)
    if full is None:
        return None, None
    if "," in full:
        last, first = (part.strip() for part in full.split(",", 1))
        return first or None, last or None
    words = full.split()
    while len(words) > 1 and words[0].endswith("."):
        words.pop(0)
    if len(words) == 1:
        return words[0], None
    start = len(words) - 1
    while start > 1 and words[start - 1].islower():
        start -= 1
    return " ".join(words[:start]), " ".join(words[start:])


def contact_from_responses(contact: object, lead: object | None) -> FetchedContact:
    """The contact from Close's contact answer and its lead answer (None: the contact has no lead)."""
    if not isinstance(contact, dict):
        raise malformed(SOURCE, "contact is not an object")
    if lead is not None and not isinstance(lead, dict):
        raise malformed(SOURCE, "lead is not an object")
    lead_data: dict[str, Any] = lead or {}
    firstname, lastname = split_name(contact.get("name"))
    phones = _entries(contact.get("phones"), "phone")
    address = next(iter(_dicts(lead_data.get("addresses"))), {})
    found: dict[str, PropertyValue] = {
        "firstname": firstname,
        "lastname": lastname,
        "phone": next((p for kind, p in phones if kind != "mobile"), None),
        "mobilephone": next((p for kind, p in phones if kind == "mobile"), None),
        "website": next((u for _, u in _entries(contact.get("urls"), "url")), None)
        or text(lead_data.get("url")),
        "jobtitle": text(contact.get("title")),
        "company": text(lead_data.get("display_name")),
        "hs_lead_status": text(lead_data.get("status_label")),
        "city": text(address.get("city")),
        "zip": text(address.get("zipcode")),
        "country": text(address.get("country")),
    }
    email = next((e for _, e in _entries(contact.get("emails"), "email")), None)
    return FetchedContact(
        email=email, sms_number=None, properties={k: v for k, v in found.items() if v is not None}
    )


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _entries(value: object, key: str) -> list[tuple[str | None, str]]:
    """(type, value) of each entry of a Close list (``emails``, ``phones``, ``urls``) that has a value."""
    return [(text(item.get("type")), v) for item in _dicts(value) if (v := text(item.get(key))) is not None]


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> FetchError:
    """The error for a Close answer that is neither 2xx nor 404 (header names lower-cased)."""
    parsed = json_or_none(body)
    info = parsed if isinstance(parsed, dict) else {}
    error = info.get("error")
    wait = retry_after(headers, now=now)
    if wait is None and status == 429:
        wait = number(error.get("rate_reset")) if isinstance(error, dict) else None
        if wait is None:
            found = _RESET.search(headers.get("ratelimit", ""))
            wait = number(found.group(1)) if found else None
    message = error.get("message") if isinstance(error, dict) else error
    return error_for_status(SOURCE, status, retry_after=wait, detail=detail(message), credential=KEY_ENV)


class CloseFetcher(CrmFetcher):
    """Reads contacts (and their leads) from Close's REST API with an API key."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not api_key:
            raise ValueError("a Close API key is required")
        self._http = CrmHttp(
            SOURCE, base_url, auth=(api_key, ""), secrets=(api_key,), session=session, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"CloseFetcher(base_url={self._http.base_url!r})"

    def fetch(self, crm_contact_id: str) -> FetchedContact | None:
        contact_id = record_id(SOURCE, crm_contact_id)
        contact = self._get(f"/api/v1/contact/{contact_id}/", CONTACT_FIELDS)
        if contact is None:
            return None
        lead: dict[str, Any] | None = None
        lead_id = text(contact.get("lead_id"))
        if lead_id is not None:
            lead = self._get(f"/api/v1/lead/{record_id(SOURCE, lead_id, 'lead id')}/", LEAD_FIELDS)
            if lead is None:
                return None  # the lead went between the two calls, and its contacts with it
        return contact_from_responses(contact, lead)

    def _get(self, path: str, fields: str) -> dict[str, Any] | None:
        """The object at ``path``, or None if Close has no such object (404)."""
        answer = self._http.get(path, params={"_fields": fields})
        if answer.status == 404:
            return None
        if not answer.ok:
            raise error_from_response(answer.status, answer.headers, answer.body)
        data = decode_json(SOURCE, answer)
        if not isinstance(data, dict):
            raise malformed(SOURCE, "not a JSON object", answer.status)
        return data

    def close(self) -> None:
        self._http.close()


def from_env(env: Mapping[str, str]) -> CloseFetcher | None:
    """The Close fetcher the environment configures, or None without ``CLOSE_API_KEY``."""
    key = env.get(KEY_ENV, "").strip()
    if not key:
        return None
    return CloseFetcher(key, base_url=base_url_from_env(env, BASE_URL_ENV, DEFAULT_BASE_URL))
