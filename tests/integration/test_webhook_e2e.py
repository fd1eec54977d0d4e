"""A signed HubSpot webhook, end to end: receiver -> Redis -> real worker -> HubSpot API -> KlickTipp.

Every part is real: the webhook receiver under uvicorn with its real Producer, a real Redis, a real
Celery worker, the fake HubSpot API and the fake KlickTipp, all over loopback HTTP.
"""

from __future__ import annotations

import time

import pytest
import requests
from celery import Celery

from fake_crm.testing import FakeCrmControl, RunningFakeCrm
from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from tests.integration.sync_helpers import Outcomes, manual_tag_names, the_contact
from tests.webhooks.helpers import dumps, hubspot_event, hubspot_headers, serving

pytestmark = pytest.mark.integration


@pytest.fixture
def hubspot(crm_server: RunningFakeCrm) -> FakeCrmControl:
    crm_server.control.reset()
    crm_server.control.seed("hubspot", [{"id": "777", "properties": {
        "email": "webhook@shop.example", "firstname": "Wanda", "lifecyclestage": "lead", "lists": "Newsletter"}}])  # fmt: skip
    return crm_server.control


@pytest.fixture
def extra_env(hubspot_api_env: dict[str, str]) -> dict[str, str]:
    return hubspot_api_env


def test_a_signed_hubspot_webhook_ends_up_as_a_contact_in_klicktipp(
    worker: Celery, settings: Settings, outcomes: Outcomes, fake: FakeControl, hubspot: FakeCrmControl
) -> None:
    now = time.time()
    # Given HubSpot's batch: a creation and two property changes of contact 777 (ids only), signed v3
    body = dumps([
        hubspot_event(1, "contact.creation", 777, at_ms=int(now * 1000) - 2000),
        hubspot_event(2, "contact.propertyChange", 777, at_ms=int(now * 1000) - 1000, propertyName="email"),
        hubspot_event(3, "contact.propertyChange", 777, at_ms=int(now * 1000), propertyName="lifecyclestage"),
    ])  # fmt: skip
    with serving(settings) as base_url:
        url = f"{base_url}/webhooks/hubspot"

        # When HubSpot delivers it, and (as HubSpot may) delivers it again
        first = requests.post(url, data=body, headers=hubspot_headers(url, body, at=now), timeout=10)
        again = requests.post(url, data=body, headers=hubspot_headers(url, body, at=now), timeout=10)
        forged = requests.post(
            url, data=body, headers=hubspot_headers(url, body, at=now, secret="wrong"), timeout=10
        )

    # Then the receiver accepted it once, refused the forgery, and one sync followed
    assert (first.status_code, again.status_code, forged.status_code) == (200, 200, 401)
    assert outcomes.wait(1)["synced"] == 1
    assert len(hubspot.requests()) == 1  # three events for one contact: fetched once
    record = the_contact(fake, "webhook@shop.example")
    assert record["fields"][CRM_CONTACT_ID_FIELD] == "777"
    assert record["fields"]["fieldFirstName"] == "Wanda"
    assert manual_tag_names(fake, record) == {"[CRM] [Lifecycle Stage] lead", "[CRM] [List] Newsletter"}
