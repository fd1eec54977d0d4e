"""A replay from the console goes all the way: the worker syncs the contacts against the fake KlickTipp
and the letters leave the dead-letter page. Real Redis, a real Celery worker, real HTTP."""

from __future__ import annotations

import re
import time

import pytest
import redis
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.config.settings import Settings
from ktsync.worker.deadletter import DeadLetter, RedisDeadLetterStore
from tests.integration.console_helpers import OPERATOR, Client, console_of, serving
from tests.integration.sync_helpers import upsert, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_replayed_group_is_synced_by_the_worker_and_leaves_the_list(
    worker: Celery, fake: FakeControl, settings: Settings, redis_client: redis.Redis, env: dict[str, str]
) -> None:
    store = RedisDeadLetterStore(redis_client, settings.key_prefix)
    for n in range(4):
        message = upsert(str(800 + n), f"replayed{n}@shop.example")
        store.add(DeadLetter(id=f"kt-down-{n}", message=message, task="ktsync.sync_contact",
                             reason="retries_exhausted", error={"message": "503 Service Unavailable"},
                             attempts=6, first_failed_at=time.time() - 60, last_failed_at=time.time() - 30,
                             source="hubspot"))  # fmt: skip
    with serving(console_of(settings, redis_client, env)) as base:
        client = Client(base)
        client.login(OPERATOR)
        assert 'data-reason="retries_exhausted"' in client.get("/dead-letters").text
        group = {"reason": "retries_exhausted", "code": ""}
        assert "4 would be replayed" in client.post("/dead-letters/replay/preview", group).text
        assert "4 replayed, 0 refused" in client.post("/dead-letters/replay", group).text
        wait_for(lambda: store.count() == 0, timeout=30)
        page = client.get("/dead-letters")
        assert 'class="empty"' in page.text
        assert not re.search(r'class="dl-group"', page.text)
    emails = {c["email"] for c in fake.state()["contacts"]}
    assert {f"replayed{n}@shop.example" for n in range(4)} <= emails


def test_a_contact_is_looked_up_and_forgotten_after_a_confirmation(
    worker: Celery, fake: FakeControl, settings: Settings, redis_client: redis.Redis, env: dict[str, str]
) -> None:
    from ktsync.producers import Producer
    from ktsync.worker.state import RedisStateStore

    with Producer(settings) as producer:
        producer.enqueue(upsert("900", "forget.me@shop.example"))
    state = RedisStateStore(redis_client, settings.key_prefix)
    synced = wait_for(lambda: state.get("hubspot", "900"), timeout=30)
    assert any(c["email"] == "forget.me@shop.example" for c in fake.state()["contacts"])
    with serving(console_of(settings, redis_client, env)) as base:
        client = Client(base)
        client.login(OPERATOR)
        client.get("/contacts")
        found = client.post("/contacts/lookup", {"query": "forget.me@shop.example"})
        assert 'id="contact"' in found.text
        assert synced.klicktipp_id in found.text
        who = {"source": "hubspot", "crm_contact_id": "900"}
        preview = client.post("/contacts/forget/preview", who)
        assert 'id="forget-confirm"' in preview.text
        assert "cannot be undone" in preview.text
        assert any(c["email"] == "forget.me@shop.example" for c in fake.state()["contacts"])  # not yet
        done = client.post("/contacts/forget", who)
        assert 'id="forget-result"' in done.text
        assert synced.klicktipp_id in done.text
        assert "forget.me@shop.example" not in done.text
        assert "contact hubspot/900" in client.get("/audit").text
    assert not any(c["email"] == "forget.me@shop.example" for c in fake.state()["contacts"])
    record = state.get("hubspot", "900")
    assert record is not None
    assert record.email is None
    assert record.erased_at
