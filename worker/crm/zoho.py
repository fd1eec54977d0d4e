"""Zoho CRM: load one contact, ``GET /crm/v{N}/Contacts/{id}`` (Zoho notifications carry ids only).

Environment (only ``ZOHO_ACCESS_TOKEN`` is required; without it there is no Zoho fetcher)::

    ZOHO_ACCESS_TOKEN     OAuth access token (header ``Authorization: Zoho-oauthtoken …``), scope
                          ZohoCRM.modules.contacts.READ
    ZOHO_API_BASE_URL     default https://www.zohoapis.com (your data centre: …zohoapis.eu, .in, .com.au, …)
    ZOHO_API_VERSION      default 7 (``7`` or ``v7``)

Zoho access tokens expire after an hour. Refreshing them with a refresh token is **not** done here:
an expired token is a 401, dead-lettered with "check ZOHO_ACCESS_TOKEN"; whoever rotates the token
restarts the workers and replays (``ktsync dlq replay --source zoho``).

Mapping (Zoho field API name -> HubSpot-style property, so the default config applies)::

    Email -> the e-mail     First_Name -> firstname     Last_Name -> lastname   Phone -> phone
    Mobile -> mobilephone   Mailing_City -> city        Mailing_Zip -> zip      Mailing_Country -> country
    Date_of_Birth -> date_of_birth   Account_Name.name -> company   Title -> jobtitle
    Lead_Source -> lead_source   (not hs_lead_status: it says where a contact came from, not its status)

204 (no record) and 404 are "no longer in the CRM". 429 honours ``Retry-After`` when sent, else the
worker's backoff.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import requests

from ktsync.core.contract import PropertyValue
from ktsync.worker.crm.base import CrmConfigError, CrmFetcher, FetchedContact, FetchError
from ktsync.worker.crm.http import (
    DEFAULT_TIMEOUT,
    CrmHttp,
    base_url_from_env,
    decode_json,
    detail,
    error_for_status,
    json_or_none,
    malformed,
    record_id,
    retry_after,
    text,
)
from ktsync.worker.klicktipp.http import Timeout

SOURCE: Final = "zoho"
TOKEN_ENV: Final = "ZOHO_ACCESS_TOKEN"  # noqa: S105 - a variable name, not a secret
BASE_URL_ENV: Final = "ZOHO_API_BASE_URL"
VERSION_ENV: Final = "ZOHO_API_VERSION"
DEFAULT_BASE_URL: Final = "https://www.zohoapis.com"
DEFAULT_VERSION: Final = "7"
NOT_FOUND: Final = frozenset({204, 404})
EMAIL_FIELD: Final = "Email"
FIELD_MAP: Final[Mapping[str, str]] = {
    "First_Name": "firstname",
    "Last_Name": "lastname",
    "Phone": "phone",
    "Mobile": "mobilephone",
    "Mailing_City": "city",
    "Mailing_Zip": "zip",
    "Mailing_Country": "country",
    "Date_of_Birth": "date_of_birth",
    "Account_Name": "company",
    "Title": "jobtitle",
    "Lead_Source": "lead_source",
}
CREDENTIAL_HINT: Final = f"{TOKEN_ENV} (access tokens expire after an hour; ktsync does not refresh them)"
_VERSION = re.compile(r"v?(\d+(?:\.\d+)?)")


def contact_from_response(data: object, *, fields: Mapping[str, str] = FIELD_MAP) -> FetchedContact | None:
    """The contact in a Zoho ``{"data": [record]}`` answer; None if ``data`` is empty."""
    records = data.get("data") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise malformed(SOURCE, "no 'data' list")
    if not records:
        return None
    record = records[0]
    if not isinstance(record, dict):
        raise malformed(SOURCE, "record is not an object")
    properties: dict[str, PropertyValue] = {}
    for field, name in fields.items():
        value = _value(record.get(field))
        if value is not None:
            properties[name] = value
    return FetchedContact(email=text(record.get(EMAIL_FIELD)), sms_number=None, properties=properties)


def _value(value: object) -> PropertyValue:
    if isinstance(value, dict):  # a lookup such as Account_Name: {"name": "Zylker", "id": "…"}
        return text(value.get("name"))
    if isinstance(value, list):  # a multi-select pick list
        items = [item.strip() for item in value if isinstance(item, str) and item.strip()]
        return items or None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool | int | float):
        return value
    return None


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> FetchError:
    """The error for a Zoho answer that is neither 2xx nor "not found" (header names lower-cased)."""
    parsed = json_or_none(body)
    info = parsed if isinstance(parsed, dict) else {}
    about = detail(info.get("code"), info.get("message"))
    return error_for_status(
        SOURCE, status, retry_after=retry_after(headers, now=now), detail=about, credential=CREDENTIAL_HINT
    )


class ZohoFetcher(CrmFetcher):
    """Reads contacts from Zoho CRM's REST API with an OAuth access token."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        version: str = DEFAULT_VERSION,
        fields: Mapping[str, str] = FIELD_MAP,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not access_token:
            raise ValueError("a Zoho access token is required")
        self.version = parse_version(version)
        self.fields = dict(fields)
        self._http = CrmHttp(
            SOURCE,
            base_url,
            headers={"Authorization": f"Zoho-oauthtoken {access_token}"},
            secrets=(access_token,),
            session=session,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"ZohoFetcher(base_url={self._http.base_url!r}, version={self.version!r})"

    def fetch(self, crm_contact_id: str) -> FetchedContact | None:
        contact_id = record_id(SOURCE, crm_contact_id)
        wanted = ",".join(dict.fromkeys([EMAIL_FIELD, *self.fields]))
        answer = self._http.get(f"/crm/v{self.version}/Contacts/{contact_id}", params={"fields": wanted})
        if answer.status in NOT_FOUND:
            return None
        if not answer.ok:
            raise error_from_response(answer.status, answer.headers, answer.body)
        return contact_from_response(decode_json(SOURCE, answer), fields=self.fields)

    def close(self) -> None:
        self._http.close()


def parse_version(value: str) -> str:
    """``7`` or ``v7`` (also ``2.1``) -> the number for the URL; ``CrmConfigError`` otherwise."""
    found = _VERSION.fullmatch(value.strip().lower())
    if found is None:
        raise CrmConfigError(f"{VERSION_ENV}: must be an API version such as 7 or v7, got {value!r}")
    return found.group(1)


def from_env(env: Mapping[str, str]) -> ZohoFetcher | None:
    """The Zoho fetcher the environment configures, or None without ``ZOHO_ACCESS_TOKEN``."""
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        return None
    return ZohoFetcher(
        token,
        base_url=base_url_from_env(env, BASE_URL_ENV, DEFAULT_BASE_URL),
        version=env.get(VERSION_ENV, "").strip() or DEFAULT_VERSION,
    )
