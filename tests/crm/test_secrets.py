"""Credentials never show in reprs, str(), errors (also their dead-letter form) or log output."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from ktsync.worker.crm import CrmFetcher, FetchError, fetchers_from_env
from ktsync.worker.crm.close import CloseFetcher
from ktsync.worker.crm.hubspot import HubSpotFetcher
from ktsync.worker.crm.zoho import ZohoFetcher

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
KEY = "api_6Jw8YZTIcF4uRX0mNLs2gk.3lHDPWnkVXb4uPZwI1DQvh"
ZOHO = "1000.4b7c0f6e0a1d2c3b4a5f6e7d8c9b0a1f.9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
SECRETS = (TOKEN, KEY, ZOHO)
H, C, Z = "https://api.hubapi.com", "https://api.close.com", "https://www.zohoapis.com"


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def fetchers() -> list[CrmFetcher]:
    return [HubSpotFetcher(TOKEN), CloseFetcher(KEY), ZohoFetcher(ZOHO)]


def test_reprs_hide_secrets() -> None:
    built = fetchers_from_env(
        {"HUBSPOT_ACCESS_TOKEN": TOKEN, "CLOSE_API_KEY": KEY, "ZOHO_ACCESS_TOKEN": ZOHO}
    )
    for fetcher in [*built.values(), *fetchers()]:
        assert_no_secret(repr(fetcher) + str(fetcher) + repr(vars(fetcher).get("_http")))


def test_a_session_of_failures_leaves_no_secret_in_logs_or_errors(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    # Given DEBUG logging everywhere (urllib3 and requests included) and every kind of failure
    caplog.set_level(logging.DEBUG)
    rsps.add(
        responses.GET,
        f"{H}/crm/v3/objects/contacts/1",
        status=401,
        json={"category": "INVALID_AUTHENTICATION"},
    )
    rsps.add(responses.GET, f"{H}/crm/v3/objects/contacts/2", body=requests.ConnectionError("refused"))
    rsps.add(responses.GET, f"{C}/api/v1/contact/cont_1/", status=429, json={"error": {"rate_reset": 1}})
    rsps.add(responses.GET, f"{Z}/crm/v7/Contacts/3", status=401, json={"code": "INVALID_TOKEN"})
    hubspot, close, zoho = fetchers()
    errors: list[FetchError] = []

    # When each fetch fails
    for fetcher, contact_id in ((hubspot, "1"), (hubspot, "2"), (close, "cont_1"), (zoho, "3")):
        with pytest.raises(FetchError) as caught:
            fetcher.fetch(contact_id)
        errors.append(caught.value)

    # Then the requests carried the credentials, and nothing else did
    sent = [call.request.headers.get("Authorization", "") for call in rsps.calls]
    assert sent[0] == f"Bearer {TOKEN}"
    assert sent[-1] == f"Zoho-oauthtoken {ZOHO}"
    assert sent[-2].startswith("Basic ")
    assert "crm" in caplog.text  # the wire did log (at DEBUG)
    assert_no_secret(caplog.text)
    for error in errors:
        assert_no_secret(str(error) + repr(error) + str(error.to_dict()))


def test_a_credential_echoed_by_the_crm_is_blanked_out(rsps: responses.RequestsMock) -> None:
    # Given a CRM that repeats the token in its error message
    rsps.add(
        responses.GET,
        f"{Z}/crm/v7/Contacts/3",
        status=401,
        json={"code": "INVALID_TOKEN", "message": f"bad {ZOHO}"},
    )

    with pytest.raises(FetchError) as caught:
        ZohoFetcher(ZOHO).fetch("3")

    assert_no_secret(str(caught.value) + str(caught.value.to_dict()))
    assert "bad ***" in str(caught.value)
