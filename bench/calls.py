"""KlickTipp calls per contact event, case by case, beside the naive connector flow.

    .venv/bin/python -m bench.calls

Each case runs through ktsync's real sync service against the fake KlickTipp and a real Redis; the
calls are counted from the fake's request log: contact operations (``/subscriber...``), and apart
from them reference-data reads and tag creations, which are cached or done once per new tag name. The naive flow is what a connector without state does per
event: search + add-or-update + one call per desired tag + one per tag removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench.environment import bench_config, bench_env
from fake_klicktipp.testing import UNSUBSCRIBED_EMAIL, FakeControl, running_fake
from ktsync.config.settings import load_settings
from ktsync.contract import ContactUpsert, parse_message
from ktsync.redis_server import resolve_redis
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


CASES: list[tuple[str, Callable[[], list[ContactUpsert]], int]] = [
    ("new contact, 3 tags", lambda: [event("1", "new@bench.example", 10)], naive(3)),
    ("unchanged resend", lambda: [event("2", "same@bench.example", 10), event("2", "same@bench.example", 11)], naive(3)),
    ("field change", lambda: [event("3", "f@bench.example", 10), event("3", "f@bench.example", 11, firstname="Bo")], naive(3)),
    ("email change", lambda: [event("4", "old@bench.example", 10), event("4", "renamed@bench.example", 11)], naive(3)),
    ("segment change (1 tag swapped)", lambda: [event("5", "s@bench.example", 10), event("5", "s@bench.example", 11, lifecyclestage="customer")], naive(3, 1)),
    ("unsubscribed contact", lambda: [event("6", UNSUBSCRIBED_EMAIL, 10)], naive(3)),
    ("stale event", lambda: [event("7", "st@bench.example", 20), event("7", "st@bench.example", 10, firstname="Old")], naive(3)),
    ("duplicate event", lambda: [replace(e, event_id="evt-8") for e in (event("8", "d@bench.example", 10), event("8", "d@bench.example", 10))], naive(3)),
]  # fmt: skip


def count_last(runtime: WorkerRuntime, fake: FakeControl, events: list[ContactUpsert]) -> tuple[int, int]:
    """Contact calls and reference reads made by the last event of a case (the earlier ones set up)."""
    for setup in events[:-1]:
        runtime.sync.upsert(setup)
    since = fake.requests()[-1]["ts"] if fake.requests() else 0.0
    runtime.sync.upsert(events[-1])
    made = fake.requests(since=since)
    contact = sum(1 for r in made if r["path"].startswith("/subscriber"))
    return contact, len(made) - contact


def main() -> None:
    with resolve_redis() as store, running_fake() as fake, bench_config(store, 1) as config:
        env = bench_env(os.environ, redis_url=store.url, base_url=fake.base_url, config=config)
        runtime = WorkerRuntime.build(load_settings(env), env)
        print(f"{'case':<34} {'ktsync':>7} {'naive':>6}   (reference reads + tag creations, amortized)")
        for name, make_events, naive_calls in CASES:
            calls, reads = count_last(runtime, fake.control, make_events())
            print(f"{name:<34} {calls:>7} {naive_calls:>6}   ({reads})")
        runtime.close()


if __name__ == "__main__":
    main()
