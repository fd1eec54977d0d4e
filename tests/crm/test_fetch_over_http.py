"""Each fetcher against the fake CRM over loopback (real HTTP): found, gone, rate-limited, failing, refused."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fake_crm.testing import CLOSE_API_KEY, HUBSPOT_TOKEN, ZOHO_TOKEN, FakeCrmControl, RunningFakeCrm
from ktsync.worker.crm import CrmFetcher, FetchedContact, FetchError, fetchers_from_env
from ktsync.worker.crm.close import CloseFetcher
from ktsync.worker.crm.hubspot import HubSpotFetcher
from ktsync.worker.crm.zoho import ZohoFetcher
from tests.crm.recorded import CLOSE_CONTACT, CLOSE_LEAD, HUBSPOT_CONTACT, ZOHO_CONTACT

CLOSE_ID, LEAD_ID = CLOSE_CONTACT["id"], CLOSE_CONTACT["lead_id"]
ZOHO_RECORD = ZOHO_CONTACT["data"][0]


@dataclass(frozen=True)
class Crm:
    """One CRM as these tests need it: how to seed it, build its fetcher, and what comes back."""

    name: str
    build: Callable[..., CrmFetcher]
    credential: str
    variable: str
    contact_id: str
    seed: Callable[[FakeCrmControl], None]
    email: str
    some_properties: dict[str, Any]


CRMS = [
    Crm(
        "hubspot", HubSpotFetcher, HUBSPOT_TOKEN, "HUBSPOT_ACCESS_TOKEN", "501",
        lambda fake: fake.seed("hubspot", [HUBSPOT_CONTACT]),
        "Alex.Example@Shop.Example", {"lists": ["Newsletter", "Webinar Herbst"], "lifecyclestage": "customer"},
    ),
    Crm(
        "close", CloseFetcher, CLOSE_API_KEY, "CLOSE_API_KEY", CLOSE_ID,
        lambda fake: fake.seed("close", [CLOSE_CONTACT], leads=[{"id": LEAD_ID, **CLOSE_LEAD}]),
        "anna@home.example", {"company": "Shop GmbH", "hs_lead_status": "Qualified", "lastname": "Schmidt"},
    ),
    Crm(
        "zoho", ZohoFetcher, ZOHO_TOKEN, "ZOHO_ACCESS_TOKEN", ZOHO_RECORD["id"],
        lambda fake: fake.seed("zoho", [ZOHO_RECORD]),
        "kris@zylker.example", {"company": "Zylker", "lead_source": "Trade Show", "firstname": "Kris"},
    ),
]  # fmt: skip


Keep = Callable[[CrmFetcher], CrmFetcher]


@pytest.fixture
def keep() -> Iterator[Keep]:
    """``keep(fetcher)`` closes the fetcher after the test."""
    made: list[CrmFetcher] = []

    def remember(fetcher: CrmFetcher) -> CrmFetcher:
        made.append(fetcher)
        return fetcher

    yield remember
    for fetcher in made:
        fetcher.close()


@pytest.fixture(params=CRMS, ids=lambda crm: crm.name)
def crm(request: pytest.FixtureRequest, fake_crm: FakeCrmControl) -> Crm:
    """Each CRM in turn, seeded with its recorded contact."""
    case: Crm = request.param
    case.seed(fake_crm)
    return case


@pytest.fixture
def fetcher(crm: Crm, fake_crm_server: RunningFakeCrm, keep: Keep) -> CrmFetcher:
    return keep(crm.build(crm.credential, base_url=fake_crm_server.base_url))


def test_a_contact_is_found_with_its_mapped_properties(
    crm: Crm, fetcher: CrmFetcher, fake_crm: FakeCrmControl
) -> None:
    contact = fetcher.fetch(crm.contact_id)

    assert contact is not None
    assert contact.email == crm.email
    assert contact.sms_number is None
    assert crm.some_properties.items() <= dict(contact.properties).items()
    assert all(r["authorized"] and r["status"] == 200 for r in fake_crm.requests(crm.name))


def test_a_contact_the_crm_does_not_have_is_none(crm: Crm, fetcher: CrmFetcher) -> None:
    assert fetcher.fetch("987654321") is None


def test_a_rate_limit_is_retryable_after_the_crms_retry_after(
    crm: Crm, fetcher: CrmFetcher, fake_crm: FakeCrmControl
) -> None:
    # Given the CRM answers the next request with 429 and Retry-After
    fake_crm.fault(429, crm=crm.name, headers={"Retry-After": "2"})

    # When the fetcher reads the contact, Then it reports a retryable error with the CRM's wait
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(crm.contact_id)
    error = caught.value
    assert (error.reason, error.retryable, error.retry_after, error.status, error.crm) == (
        "crm_fetch", True, 2.0, 429, crm.name,
    )  # fmt: skip
    # And the next attempt gets the contact
    assert fetcher.fetch(crm.contact_id) is not None


def test_a_server_error_is_retryable(crm: Crm, fetcher: CrmFetcher, fake_crm: FakeCrmControl) -> None:
    fake_crm.fault(500, crm=crm.name)

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(crm.contact_id)

    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, None, 500)


def test_a_refused_credential_is_final_and_names_the_variable(
    crm: Crm, fake_crm_server: RunningFakeCrm, fake_crm: FakeCrmControl, keep: Keep
) -> None:
    fetcher = keep(crm.build("not-the-right-one", base_url=fake_crm_server.base_url))

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(crm.contact_id)

    assert (caught.value.reason, caught.value.retryable, caught.value.status) == ("crm_fetch", False, 401)
    assert f"check {crm.variable}" in str(caught.value)
    assert "not-the-right-one" not in str(caught.value)
    assert [r["authorized"] for r in fake_crm.requests()] == [False]


def test_no_answer_is_retryable(crm: Crm, keep: Keep) -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = keep(crm.build(crm.credential, base_url=f"http://127.0.0.1:{port}"))

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(crm.contact_id)

    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert "no answer" in str(caught.value)


# -- what is particular to each CRM ---------------------------------------------------------------


def test_hubspot_asks_for_the_configured_properties_and_treats_archived_as_gone(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm, keep: Keep
) -> None:
    fake_crm.seed(
        "hubspot", [HUBSPOT_CONTACT, {"id": "502", "properties": {"email": "x@y.example"}, "archived": True}]
    )
    env = {
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        "HUBSPOT_API_BASE_URL": fake_crm_server.base_url,
        "HUBSPOT_PROPERTIES": "firstname,interests",
        "HUBSPOT_LIST_PROPERTIES": "interests",
    }
    fetcher = keep(fetchers_from_env(env)["hubspot"])

    assert fetcher.fetch("501") == FetchedContact(
        email="Alex.Example@Shop.Example", properties={"firstname": "Alex", "interests": ["Tee", "Kaffee"]}
    )
    assert fetcher.fetch("502") is None
    assert fake_crm.requests()[0]["query"] == {"properties": "email,firstname,interests", "archived": "false"}


def test_close_reads_the_contact_then_its_lead_every_time(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm, keep: Keep
) -> None:
    CRMS[1].seed(fake_crm)
    fetcher = keep(CloseFetcher(CLOSE_API_KEY, base_url=fake_crm_server.base_url))

    # When the contact is read twice, with the lead's status changed in between
    first = fetcher.fetch(CLOSE_ID)
    fake_crm.seed("close", leads=[{"id": LEAD_ID, **CLOSE_LEAD, "status_label": "Customer"}])
    second = fetcher.fetch(CLOSE_ID)

    # Then each fetch read both (the lead is never cached across fetches)
    assert first is not None
    assert first.properties["hs_lead_status"] == "Qualified"
    assert second is not None
    assert second.properties["hs_lead_status"] == "Customer"
    paths = [r["path"] for r in fake_crm.requests()]
    assert paths == [f"/api/v1/contact/{CLOSE_ID}/", f"/api/v1/lead/{LEAD_ID}/"] * 2


def test_close_a_lead_gone_between_the_two_calls_means_the_contact_is_gone(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm, keep: Keep
) -> None:
    fake_crm.seed("close", [CLOSE_CONTACT])  # no lead
    fetcher = keep(CloseFetcher(CLOSE_API_KEY, base_url=fake_crm_server.base_url))
    assert fetcher.fetch(CLOSE_ID) is None


def test_close_a_rate_limit_on_the_lead_call_is_retryable_with_closes_rate_reset(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm, keep: Keep
) -> None:
    CRMS[1].seed(fake_crm)
    fetcher = keep(CloseFetcher(CLOSE_API_KEY, base_url=fake_crm_server.base_url))
    # Given the lead call is rate-limited (Close's body says rate_reset 1.0; no Retry-After header)
    fake_crm.fault(429, crm="close", path="/api/v1/lead/")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(CLOSE_ID)

    assert (caught.value.retryable, caught.value.retry_after) == (True, 1.0)


def test_zoho_uses_the_configured_api_version_and_asks_for_the_mapped_fields(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm, keep: Keep
) -> None:
    CRMS[2].seed(fake_crm)
    env = {
        "ZOHO_ACCESS_TOKEN": ZOHO_TOKEN,
        "ZOHO_API_BASE_URL": fake_crm_server.base_url,
        "ZOHO_API_VERSION": "v8",
    }
    fetcher = keep(fetchers_from_env(env)["zoho"])

    contact = fetcher.fetch(ZOHO_RECORD["id"])

    assert contact is not None
    assert contact.properties["company"] == "Zylker"
    request = fake_crm.requests()[0]
    assert request["path"] == f"/crm/v8/Contacts/{ZOHO_RECORD['id']}"
    assert request["query"]["fields"].split(",")[:3] == ["Email", "First_Name", "Last_Name"]
