"""HubSpot CRM v3: load one contact, ``GET /crm/v3/objects/contacts/{id}?properties=…``.

Environment (only ``HUBSPOT_ACCESS_TOKEN`` is required; without it there is no HubSpot fetcher)::

    HUBSPOT_ACCESS_TOKEN       private-app or OAuth access token (Bearer); scope crm.objects.contacts.read
    HUBSPOT_API_BASE_URL       default https://api.hubapi.com
    HUBSPOT_PROPERTIES         comma-separated properties to request (default: DEFAULT_PROPERTIES);
                               ``email`` is always requested
    HUBSPOT_LIST_PROPERTIES    comma-separated properties whose ``a;b;c`` value becomes a list (default: lists)

Mapping: ``email`` becomes the contact's e-mail; every other non-empty property is passed on under its
own name (the default config mapping is written for these names). Multi-select values stay ``;``-joined
strings except for the list properties. An archived contact is "no longer in the CRM" (None).

Rate limits: HubSpot sends ``Retry-After`` on 429; without it, ``X-HubSpot-RateLimit-*`` decide
(daily budget spent: wait ``DAILY_LIMIT_WAIT``; otherwise one rate window, ``…-Interval-Milliseconds``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

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
    names_from_env,
    number,
    record_id,
    retry_after,
    text,
)
from ktsync.worker.klicktipp.http import Timeout

SOURCE: Final = "hubspot"
TOKEN_ENV: Final = "HUBSPOT_ACCESS_TOKEN"  # noqa: S105 - a variable name, not a secret
BASE_URL_ENV: Final = "HUBSPOT_API_BASE_URL"
PROPERTIES_ENV: Final = "HUBSPOT_PROPERTIES"
LIST_PROPERTIES_ENV: Final = "HUBSPOT_LIST_PROPERTIES"
DEFAULT_BASE_URL: Final = "https://api.hubapi.com"
#: The properties of the default config (``sources.default``: fields and tag rules).
DEFAULT_PROPERTIES: Final = (
    "firstname",
    "lastname",
    "company",
    "phone",
    "mobilephone",
    "website",
    "city",
    "zip",
    "country",
    "date_of_birth",
    "lead_value",
    "lifecyclestage",
    "hs_lead_status",
    "lists",
)
DEFAULT_LIST_PROPERTIES: Final = ("lists",)
#: HubSpot resets the daily budget at midnight in the account's time zone, which we do not know:
#: try again in an hour (a long delay waits in ktsync's schedule, not in the broker).
DAILY_LIMIT_WAIT: Final = 3600.0
CREDENTIAL_HINT: Final = f"{TOKEN_ENV} (and the crm.objects.contacts.read scope)"


def contact_from_response(
    data: object,
    *,
    list_properties: Collection[str] = DEFAULT_LIST_PROPERTIES,
    only: Collection[str] | None = None,
) -> FetchedContact | None:
    """The contact in a HubSpot v3 object answer; None if it is archived.

    ``only``: keep just these properties (HubSpot adds ``hs_object_id``, ``createdate``, … unasked).
    """
    if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
        raise malformed(SOURCE, "no 'properties' object")
    if data.get("archived") is True:
        return None
    raw: dict[str, object] = data["properties"]
    properties: dict[str, PropertyValue] = {}
    for name, value in raw.items():
        if name == "email" or (only is not None and name not in only):
            continue
        converted = _value(value, split=name in list_properties)
        if converted is not None:
            properties[name] = converted
    return FetchedContact(email=text(raw.get("email")), sms_number=None, properties=properties)


def _value(value: object, *, split: bool) -> PropertyValue:
    if isinstance(value, str):
        if split:
            items = [item.strip() for item in value.split(";") if item.strip()]
            return items or None
        return value if value.strip() else None
    if isinstance(value, bool | int | float):
        return value
    return None  # null, or a shape the contract cannot carry


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> FetchError:
    """The error for a HubSpot answer that is neither 2xx nor 404 (header names lower-cased)."""
    parsed = json_or_none(body)
    info = parsed if isinstance(parsed, dict) else {}
    wait = retry_after(headers, now=now)
    if wait is None and status == 429:
        wait = _rate_limit_wait(headers, info)
    correlation = info.get("correlationId")  # what HubSpot's support asks for: before the cut-off
    about = detail(
        info.get("category") or info.get("errorType"),
        info.get("policyName"),
        f"correlationId {correlation}" if isinstance(correlation, str) and correlation else None,
        info.get("message"),
    )
    return error_for_status(SOURCE, status, retry_after=wait, detail=about, credential=CREDENTIAL_HINT)


def _rate_limit_wait(headers: Mapping[str, str], info: Mapping[str, object]) -> float | None:
    if info.get("policyName") == "DAILY" or number(headers.get("x-hubspot-ratelimit-daily-remaining")) == 0:
        return DAILY_LIMIT_WAIT
    interval = number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    if interval is not None and interval > 0:
        return interval / 1000
    if number(headers.get("x-hubspot-ratelimit-secondly-remaining")) == 0:
        return 1.0
    return None


class HubSpotFetcher(CrmFetcher):
    """Reads contacts from HubSpot's CRM v3 API with a private-app (or OAuth) access token."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        properties: Sequence[str] = DEFAULT_PROPERTIES,
        list_properties: Collection[str] = DEFAULT_LIST_PROPERTIES,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not access_token:
            raise ValueError("a HubSpot access token is required")
        self._http = CrmHttp(
            SOURCE,
            base_url,
            headers={"Authorization": f"Bearer {access_token}"},
            secrets=(access_token,),
            session=session,
            timeout=timeout,
        )
        self.properties = tuple(dict.fromkeys(["email", *properties]))
        self.list_properties = frozenset(list_properties)

    def __repr__(self) -> str:
        return f"HubSpotFetcher(base_url={self._http.base_url!r})"

    def fetch(self, crm_contact_id: str) -> FetchedContact | None:
        contact_id = record_id(SOURCE, crm_contact_id)
        answer = self._http.get(
            f"/crm/v3/objects/contacts/{contact_id}",
            params={"properties": ",".join(self.properties), "archived": "false"},
        )
        if answer.status == 404:
            return None
        if not answer.ok:
            raise error_from_response(answer.status, answer.headers, answer.body)
        return contact_from_response(
            decode_json(SOURCE, answer), list_properties=self.list_properties, only=self.properties
        )

    def close(self) -> None:
        self._http.close()


def from_env(env: Mapping[str, str]) -> HubSpotFetcher | None:
    """The HubSpot fetcher the environment configures, or None without ``HUBSPOT_ACCESS_TOKEN``."""
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        return None
    return HubSpotFetcher(
        token,
        base_url=base_url_from_env(env, BASE_URL_ENV, DEFAULT_BASE_URL),
        properties=names_from_env(env, PROPERTIES_ENV, DEFAULT_PROPERTIES),
        list_properties=names_from_env(env, LIST_PROPERTIES_ENV, DEFAULT_LIST_PROPERTIES),
    )
