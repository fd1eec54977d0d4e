"""Sync semantics, ordering and concurrency: resends, stale and duplicate events, racing workers.

Real Celery workers (threads, concurrency 4) on the real Redis, real HTTP to the fake KlickTipp.
"0 calls" is asserted on the fake's whole request log: the first sync of each test warms the
shared reference-data cache and the session, so a skipped event must cost nothing at all.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.producers import Producer
from tests.integration.sync_helpers import (
    LIFECYCLE,
    SOURCE,
    T0,
    Outcomes,
    Stores,
    calls_of,
    contact_calls,
    contacts_with,
    manual_tag_names,
    sync_first,
    tag_id,
    the_contact,
    upsert,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_an_unchanged_resend_makes_no_klicktipp_call(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    sync_first(
        producer, outcomes, fake, upsert("701", "ada@shop.example", firstname="Ada", lifecyclestage="lead")
    )

    # When a scheduled sync sends the same contact state again, later
    producer.enqueue(upsert("701", "ada@shop.example", at=T0 + 3600, firstname="Ada", lifecyclestage="lead"))
    counts = outcomes.wait(2)

    # Then it is recognised as unchanged and KlickTipp is not called at all
    assert (counts["synced"], counts["unchanged"]) == (1, 1)
    assert fake.requests() == []


def test_an_event_older_than_the_last_applied_one_is_skipped_as_stale(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    sync_first(
        producer,
        outcomes,
        fake,
        upsert("702", "ben@shop.example", at=T0 + 60, firstname="Ben New", lifecyclestage="customer"),
    )

    # When an older event for the same contact arrives late (CRM webhooks are not ordered)
    producer.enqueue(upsert("702", "ben@shop.example", at=T0, firstname="Ben Old", lifecyclestage="lead"))
    counts = outcomes.wait(2)

    # Then it is skipped as stale without a call, and the newer state stays
    assert (counts["synced"], counts["stale"]) == (1, 1)
    assert fake.requests() == []
    record = the_contact(fake, "ben@shop.example")
    assert record["fields"]["fieldFirstName"] == "Ben New"
    assert manual_tag_names(fake, record) == {LIFECYCLE.format("customer")}
    state = stores.state.get(SOURCE, "702")
    assert state is not None
    assert state.occurred_at == T0 + 60


def test_an_event_id_is_applied_once(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    # When the same event (same event_id) is delivered twice at once, as at-least-once webhooks do
    event = upsert(
        "703", "cleo@shop.example", event_id="hs-evt-703-1", firstname="Cleo", lifecyclestage="lead"
    )
    producer.enqueue_many([event, event])
    counts = outcomes.wait(2)

    # Then it is applied once and the second delivery is recognised as a duplicate
    assert (counts["synced"], counts["duplicate"], counts["unchanged"]) == (1, 1, 0)
    assert len(calls_of(fake, "api.subscriber.create")) == 1
    assert len(contacts_with(fake, crm_id="703")) == 1


def test_concurrent_events_for_one_contact_end_in_the_newest_state_without_interleaving(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes, stores: Stores
) -> None:
    # Given twelve events for one contact, each newer one with another name and lifecycle stage,
    # enqueued at once and out of order (the worker runs four at a time)
    events = [
        upsert(
            "704", "dana@shop.example", at=T0 + i, firstname=f"Dana {i:02d}", lifecyclestage=f"stage-{i:02d}"
        )
        for i in range(12)
    ]
    random.Random(704).shuffle(events)

    # When they are processed
    producer.enqueue_many(events)
    counts = outcomes.wait(12)

    # Then every event was either applied or skipped as stale, and the newest one won
    assert counts["synced"] + counts["stale"] == 12, counts
    [record] = contacts_with(fake, crm_id="704")
    assert record["fields"]["fieldFirstName"] == "Dana 11"
    assert {n for n in manual_tag_names(fake, record) if n.startswith("[CRM]")} == {
        LIFECYCLE.format("stage-11")
    }
    state = stores.state.get(SOURCE, "704")
    assert state is not None
    assert (state.occurred_at, state.tags) == (T0 + 11, frozenset({LIFECYCLE.format("stage-11")}))
    # And the applied events ran one after another, oldest first, each with its own tag calls only
    applied = applied_events(fake)
    order = [i for i, _, _ in applied]
    assert order == sorted(set(order)), order
    assert order[-1] == 11
    previous = None
    for i, tagged, untagged in applied:
        assert tagged == [tag_id(fake, LIFECYCLE.format(f"stage-{i:02d}"))], (i, tagged)
        expected_untag = [] if previous is None else [tag_id(fake, LIFECYCLE.format(f"stage-{previous:02d}"))]
        assert untagged == expected_untag, (i, untagged)
        previous = i


def applied_events(fake: FakeControl) -> list[tuple[int, list[str], list[str]]]:
    """(event number, tag ids added, tag ids removed) per add-or-update/update call, in log order."""
    applied: list[tuple[int, list[str], list[str]]] = []
    for call in contact_calls(fake):
        body = call["body"]
        if call["operation"] in ("api.subscriber.create", "api.subscriber.update"):
            applied.append((int(body["fields"]["fieldFirstName"].split()[-1]), [], []))
            if body.get("tagid"):
                applied[-1][1].append(str(body["tagid"]))
        elif call["operation"] == "api.subscriber.tag":
            applied[-1][1].extend(str(t) for t in body["tagids"])
        elif call["operation"] == "api.subscriber.untag":
            applied[-1][2].append(str(body["tagid"]))
    return applied


def test_contacts_needing_the_same_new_tag_at_once_create_it_exactly_once(
    worker: Celery, fake: FakeControl, producer: Producer, outcomes: Outcomes
) -> None:
    # Given slow KlickTipp answers, which widen the window in which tasks race for a missing tag
    fake.faults(latency_ms=20)

    # When sixteen new contacts that all need the same brand-new tag are processed four at a time
    tag = LIFECYCLE.format("launch-2026")
    producer.enqueue_many(
        [upsert(f"8{i:02d}", f"c{i}@shop.example", lifecyclestage="launch-2026") for i in range(16)]
    )
    assert outcomes.wait(16)["synced"] == 16

    # Then KlickTipp was asked to create that tag exactly once, and every contact carries it
    creates = calls_of(fake, "api.tag.create")
    assert [c["body"]["name"] for c in creates] == [tag], [(c["body"], c["status"]) for c in creates]
    assert all(tag in manual_tag_names(fake, the_contact(fake, f"c{i}@shop.example")) for i in range(16))


def test_two_worker_processes_needing_the_same_new_tag_at_once_create_it_exactly_once(
    worker: Celery,
    fake: FakeControl,
    producer: Producer,
    outcomes: Outcomes,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    # Given a second worker in a process of its own (own KlickTipp session and caches), same queue
    fake.faults(latency_ms=20)
    with second_worker_process(env, tmp_path / "second-worker.log") as log:
        # When sixteen new contacts needing the same brand-new tag are enqueued at once
        tag = LIFECYCLE.format("spring-sale")
        producer.enqueue_many(
            [upsert(f"9{i:02d}", f"d{i}@shop.example", lifecyclestage="spring-sale") for i in range(16)]
        )
        counts = outcomes.wait(16)

    # Then the tag was created exactly once across both workers, and both workers synced contacts
    assert counts["synced"] == 16
    creates = calls_of(fake, "api.tag.create")
    assert [c["body"]["name"] for c in creates] == [tag], [(c["body"], c["status"]) for c in creates]
    by_second = log.read_text().count("outcome=synced")
    assert 0 < by_second < 16, log.read_text()


@contextmanager
def second_worker_process(env: dict[str, str], log: Path) -> Iterator[Path]:
    """``ktsync worker`` as an operator starts it; yields its log once it consumes, stops it after."""
    with log.open("w") as out:
        process = subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "ktsync", "worker", "--concurrency=4", "--hostname=second@%h"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            wait_for(lambda: " ready." in log.read_text() or process.poll() is not None, timeout=30)
            assert process.poll() is None, log.read_text()
            yield log
        finally:
            process.terminate()  # a warm shutdown, as on SIGTERM from a process manager
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
