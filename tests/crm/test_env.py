"""Which fetchers the environment configures, and how bad values are reported."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ktsync.config.settings import DEFAULT_CONFIG_PATH
from ktsync.worker.crm import CrmConfigError, fetchers_from_env
from ktsync.worker.crm.close import CloseFetcher
from ktsync.worker.crm.hubspot import DEFAULT_PROPERTIES, HubSpotFetcher
from ktsync.worker.crm.zoho import ZohoFetcher

ALL = {"HUBSPOT_ACCESS_TOKEN": "pat-na1-1", "CLOSE_API_KEY": "api_2", "ZOHO_ACCESS_TOKEN": "1000.3"}


def test_no_credentials_no_fetchers() -> None:
    assert fetchers_from_env({}) == {}
    assert fetchers_from_env({"HUBSPOT_ACCESS_TOKEN": "  ", "CLOSE_API_BASE_URL": "https://x.example"}) == {}


def test_one_fetcher_per_crm_with_credentials_named_by_source() -> None:
    fetchers = fetchers_from_env(ALL)
    try:
        assert {name: type(f) for name, f in fetchers.items()} == {
            "hubspot": HubSpotFetcher,
            "close": CloseFetcher,
            "zoho": ZohoFetcher,
        }
        assert "https://api.hubapi.com" in repr(fetchers["hubspot"])
        assert "https://api.close.com" in repr(fetchers["close"])
        assert "https://www.zohoapis.com" in repr(fetchers["zoho"])
        assert "'7'" in repr(fetchers["zoho"])
    finally:
        for fetcher in fetchers.values():
            fetcher.close()


def test_base_urls_versions_and_properties_come_from_the_environment() -> None:
    fetchers = fetchers_from_env(
        {
            **ALL,
            "HUBSPOT_API_BASE_URL": "http://127.0.0.1:9/",
            "HUBSPOT_PROPERTIES": "firstname, jobtitle,,firstname",
            "HUBSPOT_LIST_PROPERTIES": "interests",
            "ZOHO_API_BASE_URL": "https://www.zohoapis.eu",
            "ZOHO_API_VERSION": "v8",
        }
    )
    hubspot, zoho = fetchers["hubspot"], fetchers["zoho"]
    assert isinstance(hubspot, HubSpotFetcher)
    assert isinstance(zoho, ZohoFetcher)
    assert hubspot.properties == ("email", "firstname", "jobtitle")  # e-mail always, no duplicates
    assert hubspot.list_properties == frozenset({"interests"})
    assert "http://127.0.0.1:9" in repr(hubspot)
    assert (zoho.version, "zohoapis.eu" in repr(zoho)) == ("8", True)
    for fetcher in fetchers.values():
        fetcher.close()


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"HUBSPOT_API_BASE_URL": "api.hubapi.com"}, "HUBSPOT_API_BASE_URL"),
        ({"CLOSE_API_BASE_URL": "ftp://close"}, "CLOSE_API_BASE_URL"),
        ({"ZOHO_API_VERSION": "latest"}, "ZOHO_API_VERSION"),
        ({"HUBSPOT_PROPERTIES": "first name"}, "HUBSPOT_PROPERTIES"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_no_secret(
    extra: dict[str, str], variable: str
) -> None:
    with pytest.raises(CrmConfigError) as caught:
        fetchers_from_env({**ALL, **extra})
    assert str(caught.value).startswith(f"{variable}:")
    for secret in ALL.values():
        assert secret not in str(caught.value)


def test_the_default_hubspot_properties_cover_the_default_config() -> None:
    # Given the shipped config's default mapping and tag rules
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    default = document["sources"]["default"]
    used = set(default["fields"]) | {rule["property"] for rule in default["tags"]["rules"]}

    # Then the HubSpot fetcher asks for every one of them (a property not asked for never arrives)
    assert used <= set(DEFAULT_PROPERTIES)
