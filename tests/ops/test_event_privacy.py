"""No personal data in task events, whatever the producer: what Flower, `celery events` and `inspect` show.

The producer is another team's plain Celery app (Celery's default ``argsrepr`` is a repr of the whole
message) and a raw message without ``argsrepr``/``kwargsrepr`` headers (as ``celery-node`` sends).
The worker shows its own summary, ``contact.upsert hubspot/601``, in every event, in ``inspect
active``/``reserved``/``query_task`` while the task runs (the fake KlickTipp answers slowly), and in
Flower's API; the e-mail address and the names never appear.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from celery import Celery

from fake_klicktipp.testing import DEMO_PASSWORD, DEMO_USERNAME, FakeControl, RunningFake
from ktsync.config.settings import Settings
from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.core.lanes import Lane
from tests.integration.fault_helpers import tune
from tests.integration.sync_helpers import Outcomes, upsert, wait_for
from tests.ops.conftest import Service
from tests.ops.test_flower import AUTH, WORKER_ONLINE, start_flower

pytestmark = pytest.mark.slow  # a real Celery worker, Flower, and a slowed-down fake KlickTipp

UPSERT_TASK = TASK_NAMES[MessageType.UPSERT]
PERSONAL = ("privacy.example", "Privatus", "Geheim")  # in every address, first and last name sent


def personal(contact: str) -> dict[str, Any]:
    return upsert(contact, f"p{contact}@privacy.example", firstname="Privatus", lastname=f"Geheim{contact}")


@pytest.fixture
def rate_config() -> dict[str, Any]:
    return {"per_second": 1000, "burst": 1000, "max_in_flight": 0}


@pytest.fixture
def env(env: dict[str, str], fake_server: RunningFake) -> dict[str, str]:
    """The operations config, its worker pointed at the fake KlickTipp."""
    tune(Path(env["KTSYNC_CONFIG"]), klicktipp={"base_url": fake_server.base_url})
    return {**env, "KLICKTIPP_USERNAME": DEMO_USERNAME, "KLICKTIPP_PASSWORD": DEMO_PASSWORD}


@pytest.fixture
def plain_celery(settings: Settings) -> Iterator[Celery]:
    """Another team's producer: plain Celery, none of ktsync's code or configuration."""
    other = Celery("other-team", broker=settings.redis_url, set_as_current=False)
    other.conf.broker_transport_options = {"global_keyprefix": settings.broker_prefix}
    yield other
    other.close()


@pytest.fixture
def events(celery_worker: Celery) -> Iterator[list[dict[str, Any]]]:
    """Every event on the broker, as a raw `celery events` receiver gets it (from a worker heartbeat on)."""
    captured: list[dict[str, Any]] = []
    with celery_worker.connection_for_read() as connection:
        receiver = celery_worker.events.Receiver(connection, handlers={"*": captured.append})
        thread = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        thread.start()
        wait_for(lambda: any(e["type"] == "worker-heartbeat" for e in captured), timeout=30)
        yield captured
        receiver.should_stop = True
        thread.join(10)


@pytest.fixture
def outcomes(redis_client: redis.Redis, settings: Settings) -> Outcomes:
    return Outcomes(redis_client, settings)


def send_plain(other: Celery, settings: Settings, *args: Any) -> str:
    return str(other.send_task(UPSERT_TASK, args=list(args), queue=settings.worker.lane_queue(Lane.LIVE)).id)


def publish_without_reprs(app: Celery, settings: Settings, message: dict[str, Any]) -> str:
    """A task message as celery-node publishes it: protocol 2 headers, no argsrepr or kwargsrepr."""
    task_id = str(uuid.uuid4())
    headers = {"lang": "js", "task": UPSERT_TASK, "id": task_id, "root_id": task_id, "retries": 0}
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            json.dumps([[message], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]),
            exchange="",
            routing_key=settings.worker.lane_queue(Lane.LIVE),
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
        )
    return task_id


def assert_private(what: str, data: object) -> None:
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    leaked = [marker for marker in PERSONAL if marker in text]
    assert not leaked, f"{what} shows {leaked}: {text[:2000]}"


def flower_sees_worker(base: str) -> None:
    def online() -> bool:
        return WORKER_ONLINE in requests.get(f"{base}/metrics", auth=AUTH, timeout=5).text

    wait_for(online, timeout=30, interval=0.2)


def test_no_personal_data_in_events_inspect_or_flower_from_a_producer_that_sets_no_argsrepr(
    celery_worker: Celery,
    service: Callable[..., Service],
    events: list[dict[str, Any]],
    fake: FakeControl,
    plain_celery: Celery,
    settings: Settings,
    outcomes: Outcomes,
) -> None:
    # Given a ktsync worker, Flower following its events, and a KlickTipp that answers slowly
    base = start_flower(service)
    flower_sees_worker(base)
    fake.faults(latency_ms=1000)

    # When another team's plain Celery app sends upserts, a raw message without reprs arrives, and a
    # malformed call carries the message as a JSON string
    upserts = [send_plain(plain_celery, settings, personal(contact)) for contact in ("601", "602", "603")]
    raw = publish_without_reprs(celery_worker, settings, personal("604"))
    invalid = send_plain(plain_celery, settings, json.dumps(personal("605")))
    summaries = {
        **{
            task_id: f"contact.upsert hubspot/{c}"
            for task_id, c in zip(upserts, ("601", "602", "603"), strict=True)
        },
        raw: "contact.upsert hubspot/604",
        invalid: "invalid call",
    }

    # Then while the first tasks run, inspect shows only their summaries
    inspect = celery_worker.control.inspect(timeout=5.0, limit=1)  # one worker: no need to wait for others
    active = wait_for(lambda: [t for tasks in (inspect.active() or {}).values() for t in tasks], timeout=30)
    queried = inspect.query_task(*summaries) or {}
    assert_private("inspect active", active)
    assert {(t["id"], t["args"], t["kwargs"]) for t in active} <= {(i, s, "") for i, s in summaries.items()}
    shown = {task_id: info["args"] for reply in queried.values() for task_id, (_, info) in reply.items()}
    assert shown, queried
    assert shown.items() <= summaries.items()
    assert_private("inspect query_task", queried)
    assert_private("inspect reserved", inspect.reserved())

    # And once they all finished, the raw events show summaries, never a message
    fake.faults(latency_ms=0)
    counts = outcomes.wait(5, timeout=60)
    assert (counts["synced"], counts["dead_lettered"]) == (4, 1), counts
    by_task = wait_for(lambda: _finished_events(events, summaries), timeout=30)
    for task_id, summary in summaries.items():
        received = by_task[task_id]["task-received"]
        assert (received["args"], received["kwargs"]) == (summary, ""), received
    assert_private("task events", [e for e in events if e["type"].startswith("task-")])

    # And Flower's API shows the same summaries, never a message
    tasks = wait_for(lambda: _flower_tasks(base, summaries), timeout=30, interval=0.2)
    assert {task_id: tasks[task_id]["args"] for task_id in summaries} == summaries
    assert_private("Flower /api/tasks", tasks)
    for task_id in summaries:
        info = requests.get(f"{base}/api/task/info/{task_id}", auth=AUTH, timeout=5)
        assert info.status_code == 200, info.text
        assert info.json()["args"] == summaries[task_id]
        assert_private(f"Flower /api/task/info/{task_id}", info.text)


def test_a_retried_task_reports_no_personal_data(
    celery_worker: Celery,
    events: list[dict[str, Any]],
    fake: FakeControl,
    plain_celery: Celery,
    settings: Settings,
    outcomes: Outcomes,
) -> None:
    # Given a KlickTipp that fails every call
    fake.faults(error_rate=1.0, error_status=503)

    # When another team's upsert is tried, and retried once KlickTipp recovers
    task_id = send_plain(plain_celery, settings, personal("701"))
    retried = wait_for(lambda: _event(events, task_id, "task-retried"), timeout=30)
    fake.faults(error_rate=0.0)
    assert outcomes.wait(1, timeout=60)["synced"] == 1

    # Then the retried and succeeded events name the error's type at most, and carry no personal data
    succeeded = wait_for(lambda: _event(events, task_id, "task-succeeded"), timeout=30)
    assert retried["traceback"] == ""
    assert_private("task-retried", retried)
    assert_private("task-succeeded", succeeded)
    assert_private("task events", [e for e in events if e["type"].startswith("task-")])


def _event(events: list[dict[str, Any]], task_id: str, kind: str) -> dict[str, Any] | None:
    return next((e for e in list(events) if e.get("uuid") == task_id and e["type"] == kind), None)


def _finished_events(
    events: list[dict[str, Any]], summaries: dict[str, str]
) -> dict[str, dict[str, dict[str, Any]]] | None:
    """Each task's received, started and succeeded events, once every task has all three."""
    by_task: dict[str, dict[str, dict[str, Any]]] = {task_id: {} for task_id in summaries}
    for event in list(events):
        if event.get("uuid") in by_task:
            by_task[event["uuid"]][event["type"]] = event
    wanted = {"task-received", "task-started", "task-succeeded"}
    return by_task if all(wanted <= set(kinds) for kinds in by_task.values()) else None


def _flower_tasks(base: str, summaries: dict[str, str]) -> dict[str, Any] | None:
    response = requests.get(f"{base}/api/tasks", auth=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    tasks: dict[str, Any] = response.json()
    done = all(tasks.get(task_id, {}).get("state") == "SUCCESS" for task_id in summaries)
    return tasks if done else None
