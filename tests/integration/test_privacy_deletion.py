"""Privacy deletions erase, end to end: a signed HubSpot ``contact.privacyDeletion``, a ``contact.deleted``
with ``privacy: true``, and an operator's ``ktsync contact forget``.

Every part is real: the webhook receiver under uvicorn with its Producer, a real Redis, a real Celery
worker (threads), the fake KlickTipp over loopback HTTP, and the command line through click's runner.
Each test ends by reading every key of its own prefix: none may still hold the person's address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from celery import Celery
from click.testing import CliRunner

from fake_crm.testing import FakeCrmControl, RunningFakeCrm
from ktsync.cli import main
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from ktsync.worker.erasure import ERASED
from ktsync.worker.telemetry import read_timeline
from tests.integration.conftest import wait_for
from tests.integration.sync_helpers import (
    SOURCE,
    T0,
    Outcomes,
    Stores,
    contacts_with,
    deletion_requested,
    upsert,
)
from tests.webhooks.helpers import dumps, hubspot_event, hubspot_headers, serving

pytestmark = pytest.mark.integration

ERIKA = "erika.privacy@shop.example"


@pytest.fixture
def hubspot(crm_server: RunningFakeCrm) -> FakeCrmControl:
    """The fake HubSpot API, where contact 501 is Erika (the worker fetches it for a property change)."""
    crm_server.control.reset()
    crm_server.control.seed("hubspot", [{"id": "501", "properties": {"email": ERIKA, "firstname": "Erika"}}])
    return crm_server.control


@pytest.fixture
def extra_env(hubspot_api_env: dict[str, str]) -> dict[str, str]:
    return hubspot_api_env


def holding(client: redis.Redis, namespace: str, text: str) -> list[str]:
    """The keys of the test's prefix whose name or value holds ``text`` (any letter case)."""
    wanted = text.lower().encode()
    found = []
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        if wanted in b" ".join([key, *_values(client, key)]).lower():
            found.append(key.decode())
    return sorted(found)


def _values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key) or b""]
    if kind == "hash":
        return [item for pair in client.hgetall(key).items() for item in pair]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return list(client.zrange(key, 0, -1))
    if kind == "stream":
        return [value for _, entry in client.xrange(key) for pair in entry.items() for value in pair]
    return []


def count(outcomes: Outcomes, name: str) -> int:
    return outcomes.snapshot()[name]


@dataclass(frozen=True)
class Erika:
    """hubspot/501 with a history (see the fixture): its KlickTipp id, when the history ended, and
    what the checks after the erasure read."""

    klicktipp_id: str
    history_end: float
    client: redis.Redis
    settings: Settings
    fake: Any
    stores: Stores

    def then_only_a_tombstone_remains(self) -> None:
        assert contacts_with(self.fake, email=ERIKA) == []
        assert holding(self.client, self.settings.key_prefix, ERIKA) == []
        tombstone = self.stores.state.get(SOURCE, "501")
        assert tombstone is not None
        kt_id = self.klicktipp_id
        assert (tombstone.email, tombstone.klicktipp_id, tombstone.tags) == (None, kt_id, frozenset())
        assert tombstone.erased_at is not None
        assert tombstone.erasure_requested_at is not None
        # the history went; what arrived since (a redelivery, or a task that ran beside the erasure and
        # recorded its steps after it) is recorded again, in ids and times (no address: checked above)
        later = read_timeline(self.client, self.settings.key_prefix, SOURCE, "501")
        assert all(entry["at"] >= self.history_end for entry in later), later
        assert self.stores.review.list() == []
        assert not [d for d in self.stores.dead_letters.list() if d.message.get("crm_contact_id") == "501"]
        [erased] = self.stores.outbound_of(ERASED)
        assert (erased["source"], erased["crm_contact_id"], erased["klicktipp_id"]) == (SOURCE, "501", kt_id)


@pytest.fixture
def erika(
    worker: Celery,
    settings: Settings,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    fake: Any,
    redis_client: redis.Redis,
) -> Erika:
    """Given: hubspot/501 synced (state, timeline, outbound entry), then a change of it dead-lettered
    (a date KlickTipp cannot take), and a KlickTipp deletion request kept for review."""
    producer.enqueue(upsert("501", ERIKA, firstname="Erika", lifecyclestage="customer"))
    wait_for(lambda: count(outcomes, "synced") == 1)
    producer.enqueue(upsert("501", ERIKA, at=T0 + 10, date_of_birth="not a date"))
    wait_for(lambda: count(outcomes, "dead_lettered") == 1)
    record = stores.state.get(SOURCE, "501")
    assert record is not None
    assert record.klicktipp_id
    producer.enqueue(deletion_requested(ERIKA, record.klicktipp_id, at=T0 + 20))
    wait_for(lambda: count(outcomes, "review") == 1)
    assert stores.review.list()
    assert stores.dead_letters.count() == 1
    return Erika(record.klicktipp_id, time.time(), redis_client, settings, fake, stores)


def test_a_signed_hubspot_privacy_deletion_erases_the_contact_everywhere(
    hubspot: FakeCrmControl,  # first: it resets the fake CRM before the given
    erika: Erika,
    settings: Settings,
    outcomes: Outcomes,
    stores: Stores,
    redis_client: redis.Redis,
) -> None:
    assert holding(redis_client, settings.key_prefix, ERIKA)  # the history does hold the address

    # When HubSpot delivers a signed batch: a property change of 501 and, later, its privacy deletion
    now = time.time()
    body = dumps([
        hubspot_event(41, "contact.propertyChange", 501, at_ms=int(now * 1000) - 1000, propertyName="firstname"),
        hubspot_event(42, "contact.privacyDeletion", 501, at_ms=int(now * 1000)),
    ])  # fmt: skip
    with serving(settings) as base_url:
        url = f"{base_url}/webhooks/hubspot"
        answer = requests.post(url, data=body, headers=hubspot_headers(url, body, at=now), timeout=10)
    assert answer.status_code == 200, answer.text

    # Then the contact is deleted in KlickTipp, and ktsync keeps no copy of the address anywhere; the
    # change was fetched and applied before the erasure, or is older than it and skipped as stale
    wait_for(lambda: count(outcomes, "deleted_privacy") == 1)
    wait_for(lambda: count(outcomes, "synced") == 2 or count(outcomes, "stale") == 1)
    assert count(outcomes, "dead_lettered") == 1
    erika.then_only_a_tombstone_remains()
    tombstone = stores.state.get(SOURCE, "501")
    assert tombstone is not None
    assert tombstone.erased_by == "privacy deletion (event 42)"
    assert tombstone.erasure_requested_at == pytest.approx(int(now * 1000) / 1000)


def test_a_contact_deleted_with_privacy_erases_whatever_the_deletion_policy(
    erika: Erika, settings: Settings, producer: Producer, outcomes: Outcomes, stores: Stores, fake: Any
) -> None:
    assert settings.source(SOURCE).deletion_policy == "untag"  # an ordinary deletion would keep the contact

    # When a producer asks for the privacy deletion (the Python API), and it is delivered twice
    producer.forget(SOURCE, "501", email=ERIKA, occurred_at=T0 + 30)
    wait_for(lambda: count(outcomes, "deleted_privacy") == 1)
    producer.forget(SOURCE, "501", occurred_at=T0 + 30)
    wait_for(lambda: count(outcomes, "duplicate") == 1)

    # Then the contact is gone and only its tombstone remains
    erika.then_only_a_tombstone_remains()

    # And a stale retry of an older change does not bring the data back, a new subscription does
    producer.enqueue(upsert("501", ERIKA, at=T0 + 25, firstname="Erika"))
    wait_for(lambda: count(outcomes, "stale") == 1)
    assert contacts_with(fake, email=ERIKA) == []
    producer.enqueue(upsert("501", ERIKA, at=T0 + 40, firstname="Erika"))
    wait_for(lambda: count(outcomes, "synced") == 2)
    back = stores.state.get(SOURCE, "501")
    assert back is not None
    assert (back.email, back.is_tombstone, back.erasure_requested_at) == (ERIKA, False, T0 + 30)
    assert len(contacts_with(fake, email=ERIKA)) == 1


def cli(env: dict[str, str], *args: str, answer: str = "") -> Any:
    return CliRunner().invoke(main, list(args), env=env, input=answer)


def test_an_operator_forgets_a_contact_and_show_finds_one_that_only_failed(
    erika: Erika,
    env: dict[str, str],
    settings: Settings,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    fake: Any,
    redis_client: redis.Redis,
) -> None:
    # Given Erika, and hubspot/601, which only failed so far: a dead letter and a timeline, no state
    producer.enqueue(upsert("601", "only.failed@shop.example", date_of_birth="never"))
    wait_for(lambda: count(outcomes, "dead_lettered") == 2)

    # contact show finds the one that only failed, by its CRM id and by its address
    for who in ("601", "hubspot/601", "Only.Failed@shop.example"):
        shown = cli(env, "contact", "show", who)
        assert shown.exit_code == 0, shown.output
        assert shown.output.startswith("hubspot/601: no state yet"), shown.output
        assert "dead letter" in shown.output
        assert "event" in shown.output  # its timeline
    assert cli(env, "contact", "show", "nobody@shop.example").exit_code == 1

    # When the operator declines, nothing happens
    declined = cli(env, "contact", "forget", ERIKA, answer="n\n")
    assert declined.exit_code == 1
    assert len(contacts_with(fake, email=ERIKA)) == 1

    # When the operator forgets Erika by her address, confirming with --yes
    done = cli(env, "contact", "forget", ERIKA.upper(), "--yes")

    # Then she is erased, and what was erased is printed in ids and counts, never the address
    assert done.exit_code == 0, done.output
    assert ERIKA not in done.output.lower()
    assert "tombstones hubspot/501" in done.output
    assert f"deleted {erika.klicktipp_id}" in done.output
    erika.then_only_a_tombstone_remains()
    tombstone = stores.state.get(SOURCE, "501")
    assert tombstone is not None
    assert tombstone.erased_by == "operator (ktsync contact forget)"
    shown = cli(env, "contact", "show", "hubspot/501")
    assert "erased" in shown.output

    # And the contact that only failed is forgotten by its CRM id, in JSON
    forgotten = cli(env, "contact", "forget", "hubspot/601", "--yes", "--json")
    assert forgotten.exit_code == 0, forgotten.output
    assert '"contacts": ["hubspot/601"]' in forgotten.output
    assert holding(redis_client, settings.key_prefix, "only.failed@shop.example") == []
    refused = cli(env, "contact", "forget", "", "--yes")
    assert refused.exit_code not in (0, 1), refused.output  # a usage error
    assert "WHO" in refused.output
