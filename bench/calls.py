"""KlickTipp calls per contact event, case by case, beside the naive connector flow.

    .venv/bin/python -m bench.calls

Each case runs through ktsync's real sync service against the fake KlickTipp and a real Redis; the
calls are counted from the fake's request log: contact operations (``/subscriber...``), and apart
from them reference-data reads and tag creations, which are cached or done once per new tag name. The naive flow is what a connector without state does per
event: search + add-or-update + one call per desired tag + one per tag removed. Every case runs in
both profiles of the fake: ``documented`` (its OpenAPI spec) and ``recorded`` (the live API's answers
as KlickTipp's connectors record them: no tag maps in subscriber answers, ``["Error 4"]``, …).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench.environment import bench_config, bench_env
from fake_klicktipp.testing import UNSUBSCRIBED_EMAIL, FakeControl, running_fake
from ktsync.config.settings import load_settings
from ktsync.core.contract import ContactUpsert, parse_message
from ktsync.core.redis_server import resolve_redis
from ktsync.worker.runtime import WorkerRuntime


def event(crm_id: str, email: str, at: int, **properties: Any) -> ContactUpsert:
    props = {"firstname": "Alex", "lifecyclestage": "lead", "lists": ["Newsletter", "Events"], **properties}
    message = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": crm_id,
               "email": email, "properties": props, "occurred_at": at}  # fmt: skip
    parsed = parse_message(message)
    assert isinstance(parsed, ContactUpsert)
    return parsed


def naive(desired_tags: int, removed_tags: int = 0) -> int:
    return 2 + desired_tags + removed_tags


Case = Callable[[str], list[ContactUpsert]]  # events of one case, ids and addresses prefixed
CASES: list[tuple[str, Case, int]] = [
    ("new contact, 3 tags", lambda p: [event(p + "1", p + "new@bench.example", 10)], naive(3)),
    ("unchanged resend", lambda p: [event(p + "2", p + "same@bench.example", 10), event(p + "2", p + "same@bench.example", 11)], naive(3)),
    ("field change", lambda p: [event(p + "3", p + "f@bench.example", 10), event(p + "3", p + "f@bench.example", 11, firstname="Bo")], naive(3)),
    ("email change", lambda p: [event(p + "4", p + "old@bench.example", 10), event(p + "4", p + "renamed@bench.example", 11)], naive(3)),
    ("segment change (1 tag swapped)", lambda p: [event(p + "5", p + "s@bench.example", 10), event(p + "5", p + "s@bench.example", 11, lifecyclestage="customer")], naive(3, 1)),
    ("unsubscribed contact", lambda p: [event(p + "6", UNSUBSCRIBED_EMAIL, 10)], naive(3)),
    ("stale event", lambda p: [event(p + "7", p + "st@bench.example", 20), event(p + "7", p + "st@bench.example", 10, firstname="Old")], naive(3)),
    ("duplicate event", lambda p: [replace(e, event_id=p + "evt-8") for e in (event(p + "8", p + "d@bench.example", 10), event(p + "8", p + "d@bench.example", 10))], naive(3)),
]  # fmt: skip
PROFILES = ("documented", "recorded")


def count_last(runtime: WorkerRuntime, fake: FakeControl, events: list[ContactUpsert]) -> tuple[int, int]:
    """Contact calls and reference reads made by the last event of a case (the earlier ones set up)."""
    for setup in events[:-1]:
        runtime.services.sync.upsert(setup)
    since = fake.requests()[-1]["ts"] if fake.requests() else 0.0
    runtime.services.sync.upsert(events[-1])
    made = fake.requests(since=since)
    contact = sum(1 for r in made if r["path"].startswith("/subscriber"))
    return contact, len(made) - contact


def main() -> None:
    """Each case in both profiles of the fake: as KlickTipp documents its answers, and as recorded."""
    with resolve_redis() as store, running_fake() as fake, bench_config(store, 1) as config:
        env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=config)
        runtime = WorkerRuntime.build(load_settings(env), env)
        results: dict[str, list[tuple[int, int]]] = {}
        for profile in PROFILES:
            fake.control.reset()
            fake.control.use_profile(profile)
            runtime.klicktipp.reference.invalidate()
            results[profile] = [count_last(runtime, fake.control, make(profile[0])) for _, make, _ in CASES]
        print(
            f"{'case':<34} {'documented':>10} {'recorded':>9} {'naive':>6}   (reference reads + tag creations)"
        )
        for index, (name, _, naive_calls) in enumerate(CASES):
            (doc, doc_reads), (rec, rec_reads) = (results[p][index] for p in PROFILES)
            print(f"{name:<34} {doc:>10} {rec:>9} {naive_calls:>6}   ({doc_reads}, {rec_reads})")
        runtime.close()


if __name__ == "__main__":
    main()
