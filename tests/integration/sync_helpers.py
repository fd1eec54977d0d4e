"""Helpers for the sync-semantics tests: events, the fake's request log, outcomes and stores in Redis."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis

from fake_klicktipp.testing import CRM_CONTACT_ID_FIELD, FakeControl
from ktsync.config.settings import Settings
from ktsync.producers import Producer
from ktsync.worker.deadletter import RedisDeadLetterStore
from ktsync.worker.outbound import RedisOutbound
from ktsync.worker.review import RedisReviewList
from ktsync.worker.state import RedisStateStore
from ktsync.worker.stats import RedisStats

SOURCE = "hubspot"
T0 = 1_795_341_600  # 2026-11-22T10:00:00Z, Unix seconds
LIFECYCLE = "[CRM] [Lifecycle Stage] {}"
LIST = "[CRM] [List] {}"
# Outcomes that end a task (``retried`` does not: the task runs again).
FINAL_OUTCOMES = (
    "synced",
    "unsubscribed",
    "unchanged",
    "stale",
    "duplicate",
    "planned",
    "deleted_untag",
    "deleted_unsubscribe",
    "deleted_delete",
    "deleted_ignore",
    "deleted_privacy",
    "review",
    "delete_in_crm",
    "anonymize",
    "dead_lettered",
    "not_in_crm",
    "not_in_klicktipp",
    "refreshed",
    "no_address",
)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail with its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def upsert(
    crm_contact_id: str, email: str, *, at: float = T0, event_id: str | None = None, **properties: Any
) -> dict[str, Any]:
    """A ``contact.upsert`` message of the HubSpot source (``at``: Unix seconds)."""
    message: dict[str, Any] = {
        "v": 1,
        "type": "contact.upsert",
        "source": SOURCE,
        "crm_contact_id": crm_contact_id,
        "email": email,
        "properties": properties,
        "occurred_at": at,
    }
    return {**message, "event_id": event_id} if event_id else message


def deleted(crm_contact_id: str, email: str, *, at: float) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "contact.deleted",
        "source": SOURCE,
        "crm_contact_id": crm_contact_id,
        "email": email,
        "occurred_at": at,
    }


def deletion_requested(email: str, klicktipp_id: str, *, at: float) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "klicktipp.deletion_requested",
        "email": email,
        "klicktipp_id": klicktipp_id,
        "occurred_at": at,
    }


class Outcomes:
    """The workers' outcome counters (shared through Redis), and waiting for tasks to finish."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._stats = RedisStats(client, settings.key_prefix)

    def snapshot(self) -> Counter[str]:
        return Counter(self._stats.snapshot())

    def finished(self) -> int:
        counts = self.snapshot()
        return sum(counts[name] for name in FINAL_OUTCOMES)

    def wait(self, total: int, timeout: float = 15.0) -> Counter[str]:
        """Wait until ``total`` tasks have finished (whatever their outcome); the counters then."""
        wait_for(lambda: self.finished() >= total, timeout=timeout)
        counts = self.snapshot()
        assert self.finished() == total, counts  # more would mean a task ran twice
        return counts


class Stores:
    """What the workers keep in Redis: contact state, outbound stream, review list, dead letters."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        prefix = settings.key_prefix
        self.state = RedisStateStore(client, prefix)
        self.outbound = RedisOutbound(client, prefix)
        self.review = RedisReviewList(client, prefix)
        self.dead_letters = RedisDeadLetterStore(client, prefix)

    def outbound_of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for _, entry_kind, payload in self.outbound.read(1000) if entry_kind == kind]


def sync_first(producer: Producer, outcomes: Outcomes, fake: FakeControl, message: dict[str, Any]) -> None:
    """Given: the contact was synced once (the request log starts empty afterwards)."""
    producer.enqueue(message)
    counts = outcomes.wait(1)
    assert counts["synced"] == 1, counts
    fake.clear_requests()


# -- the fake KlickTipp ------------------------------------------------------------------------------


def contact_calls(fake: FakeControl) -> list[dict[str, Any]]:
    """Logged calls about contacts (``api.subscriber.*``): no login, reference data or tag creation."""
    return [r for r in fake.requests() if (r["operation"] or "").startswith("api.subscriber.")]


def calls_of(fake: FakeControl, operation: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if r["operation"] == operation]


def wire(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in calls]


def contacts_with(
    fake: FakeControl, *, email: str | None = None, crm_id: str | None = None
) -> list[dict[str, Any]]:
    """Every contact in the fake with this address or this CRM contact ID in the "CRM Contact ID" field."""
    return [
        c
        for c in fake.state()["contacts"]
        if (email is not None and c["email"] == email)
        or (crm_id is not None and c["fields"].get(CRM_CONTACT_ID_FIELD) == crm_id)
    ]


def the_contact(fake: FakeControl, email: str) -> dict[str, Any]:
    found = contacts_with(fake, email=email)
    assert len(found) == 1, found
    return found[0]


def tag_id(fake: FakeControl, name: str) -> str:
    ids = [str(t["id"]) for t in fake.state()["tags"] if t["name"] == name]
    assert len(ids) == 1, f"tag {name!r}: {ids}"
    return ids[0]


def manual_tag_names(fake: FakeControl, record: dict[str, Any]) -> set[str]:
    names = {str(t["id"]): t["name"] for t in fake.state()["tags"]}
    return {names[str(t)] for t in record["manual_tags"]}
