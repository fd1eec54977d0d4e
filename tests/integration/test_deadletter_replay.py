"""The dead-letter queue as an operator uses it: read it by cause, fix the cause, replay, purge."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
import requests
from celery import Celery

from fake_klicktipp.testing import FakeControl, partner_headers
from ktsync.config.settings import Settings
from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.producers import Producer
from tests.integration.sync_helpers import Outcomes, Stores, contact_calls, sync_first, upsert, wait_for
from tests.integration.test_vertical_slice import ktsync

pytestmark = pytest.mark.integration


def conflict_letter(producer: Producer, outcomes: Outcomes, fake: FakeControl, stores: Stores) -> str:
    """Given: contact 1 tried to take contact 2's address (507) and was dead-lettered as a conflict."""
    sync_first(producer, outcomes, fake, upsert("1", "one@shop.example", lifecyclestage="lead"))
    producer.enqueue(upsert("2", "two@shop.example", at=1_795_341_601, lifecyclestage="lead"))
    outcomes.wait(2)
    task_id = producer.enqueue(upsert("1", "two@shop.example", at=1_795_341_700, lifecyclestage="lead"))
    outcomes.wait(3)
    letter = stores.dead_letters.get(task_id)
    assert letter is not None
    assert (letter.reason, letter.code) == ("conflict", 507)
    return task_id


def test_stats_group_dead_letters_by_cause_with_the_fix_to_make(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    env: dict[str, str],
) -> None:
    conflict_letter(producer, outcomes, fake, stores)
    producer.enqueue(upsert("3", "three@shop.example", website="www.no-scheme.example"))
    outcomes.wait(4)

    result = ktsync("dlq", "stats", env=env)

    assert result.returncode == 0, result.stderr
    assert (
        "1  conflict (code 507): the address or SMS number belongs to another KlickTipp contact"
        in result.stdout
    )
    assert "fix: merge or clean up the two contacts" in result.stdout
    assert "1  mapping: a CRM value cannot be converted" in result.stdout
    listed = json.loads(ktsync("dlq", "list", "--reason", "conflict", "--json", env=env).stdout)
    assert [
        (entry["reason"], entry["error"]["old_email"], entry["error"]["new_email"]) for entry in listed
    ] == [("conflict", "one@shop.example", "two@shop.example")]


def test_a_replay_that_fails_again_comes_back_and_one_that_succeeds_leaves(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    env: dict[str, str],
) -> None:
    letter_id = conflict_letter(producer, outcomes, fake, stores)

    # When it is replayed while the other contact still holds the address
    first = ktsync("dlq", "replay", "--reason", "conflict", env=env)
    assert "1 replayed, 0 refused" in first.stdout, first.stderr
    wait_for(
        lambda: (stores.dead_letters.get(letter_id) or letter_id).replays == 1 and outcomes.finished() == 4
    )  # type: ignore[union-attr]

    # Then the entry is back with its history: one replay, two attempts, the same reason
    again = stores.dead_letters.get(letter_id)
    assert again is not None
    assert (again.reason, again.replays, again.attempts) == ("conflict", 1, 2)

    # When the operator frees the address in KlickTipp and replays once more
    other = next(c for c in fake.state()["contacts"] if c["email"] == "two@shop.example")
    requests.delete(
        f"{fake.base_url}/subscriber/{other['id']}", headers=partner_headers(), timeout=5
    ).raise_for_status()
    ktsync("dlq", "replay", letter_id, env=env)

    # Then the replayed task succeeds, and only then the entry leaves the queue
    wait_for(lambda: stores.dead_letters.get(letter_id) is None)
    assert outcomes.snapshot()["replay_succeeded"] == 1
    assert [c["email"] for c in fake.state()["contacts"] if c["fields"].get("field100001") == "1"] == [
        "two@shop.example"
    ]


def test_a_dry_run_replay_and_purge_change_nothing_and_purge_removes(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    stores: Stores,
    env: dict[str, str],
) -> None:
    letter_id = conflict_letter(producer, outcomes, fake, stores)
    fake.clear_requests()

    assert f"{letter_id}: would replay" in ktsync("dlq", "replay", "--all", "--dry-run", env=env).stdout
    assert f"{letter_id}: would purge" in ktsync("dlq", "purge", "--code", "507", "--dry-run", env=env).stdout
    assert stores.dead_letters.get(letter_id) is not None
    assert contact_calls(fake) == []

    assert f"{letter_id}: purged" in ktsync("dlq", "purge", "--reason", "conflict", env=env).stdout
    assert stores.dead_letters.get(letter_id) is None


def test_replay_and_purge_need_a_selection(env: dict[str, str], redis_client: redis.Redis) -> None:
    result = ktsync("dlq", "purge", env=env)
    assert result.returncode == 64  # a usage error (EX_USAGE); 2 means "some lines rejected"
    assert "name dead letters by id, or select them with --all" in result.stderr


def test_a_message_that_keeps_killing_its_worker_is_dead_lettered_as_poison(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores,
    settings: Settings, redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given a task whose earlier deliveries never finished (the worker process died each time)
    task_id = str(uuid.uuid4())
    redis_client.set(f"{settings.key_prefix}:deliveries:{task_id}", settings.deadletter.max_deliveries)

    # When it is delivered once more
    producer.send(TASK_NAMES[MessageType.UPSERT], [upsert("9", "poison@shop.example")], {}, task_id)

    # Then it is dead-lettered as poison instead of running (and maybe killing the worker) again
    outcomes.wait(1)
    letter = stores.dead_letters.get(task_id)
    assert letter is not None
    assert letter.reason == "poison"
    assert contact_calls(fake) == []
