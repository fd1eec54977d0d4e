"""Nothing lost from a malformed call: whatever arrives on a ktsync queue is run or dead-lettered as received.

The producer is another team's: a plain Celery app with none of ktsync's code or configuration, or a
raw broker message (what a client in another language might publish). Every wrong shape ends as an
``invalid_message`` dead letter with the arguments (or the body) as received and a reason naming the
problem, counted as ``dead_lettered``, and nothing stays queued or unacknowledged.
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from fake_klicktipp.testing import FakeControl
from ktsync.config.settings import Settings
from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.core.lanes import Lane
from ktsync.core.replay import replay
from ktsync.worker.deadletter import DeadLetter
from tests.integration.fault_helpers import pending, unacked_key, worker_process
from tests.integration.sync_helpers import Outcomes, Stores, contact_calls, deleted, upsert, wait_for

pytestmark = pytest.mark.integration

UPSERT_TASK = TASK_NAMES[MessageType.UPSERT]
EMAIL = "alex@malformed.example"
MESSAGE = upsert("501", EMAIL, firstname="Alex")


@pytest.fixture
def plain_celery(settings: Settings) -> Iterator[Celery]:
    """Another team's producer: plain Celery on the same broker, none of ktsync's code or configuration."""
    other = Celery("other-team", broker=settings.redis_url, set_as_current=False)
    if settings.broker_prefix:
        other.conf.broker_transport_options = {"global_keyprefix": settings.broker_prefix}
    yield other
    other.close()


def send(other: Celery, settings: Settings, task: str = UPSERT_TASK, **call: Any) -> str:
    return str(other.send_task(task, queue=settings.worker.lane_queue(Lane.LIVE), **call).id)


def publish(
    app: Celery, settings: Settings, body: bytes, *, content_type: str, headers: dict[str, Any]
) -> None:
    """A raw broker message on the live queue, published as any AMQP or Redis client could."""
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=settings.worker.lane_queue(Lane.LIVE),
            content_type=content_type,
            content_encoding="utf-8" if content_type == "application/json" else "binary",
            headers=headers,
        )


@pytest.fixture
def settled(
    redis_client: redis.Redis, settings: Settings, stores: Stores, outcomes: Outcomes
) -> Callable[..., DeadLetter]:
    """Waits for the one dead letter (under ``letter_id``, when given), once nothing is left queued or
    unacknowledged; it was counted, nothing else ran."""

    def idle_letters() -> list[DeadLetter] | None:
        letters = stores.dead_letters.list()
        idle = pending(redis_client, settings) == 0 and redis_client.hlen(unacked_key(settings)) == 0
        return letters if letters and idle else None

    def settled_letter(letter_id: str | None = None) -> DeadLetter:
        letters = wait_for(idle_letters)
        assert len(letters) == 1, letters
        letter: DeadLetter = letters[0]
        if letter_id is not None:
            assert letter.id == letter_id
        counts = outcomes.snapshot()
        assert counts["dead_lettered"] == 1, counts
        assert outcomes.finished() == 1, counts
        return letter

    return settled_letter


CALLS: dict[str, tuple[dict[str, Any], str]] = {
    "the message as a JSON string": (
        {"args": [json.dumps(MESSAGE)]},
        "args[0]: expected the message as a JSON object, got a string (JSON text of an object: send the object itself)",
    ),
    "the message in a list": (
        {"args": [[MESSAGE]]},
        "args[0]: expected the message as a JSON object, got a list",
    ),
    "a number": ({"args": [501]}, "args[0]: expected the message as a JSON object, got a number"),
    "null": ({"args": [None]}, "args[0]: expected the message as a JSON object, got null"),
    "no argument at all": ({}, "args: no message; send args=[message] or kwargs={'message': message}"),
    "an extra positional argument": ({"args": [MESSAGE, "extra"]}, "args[1]: unexpected positional argument"),
    "an unknown keyword argument": (
        {"args": [MESSAGE], "kwargs": {"colour": "blue"}},
        "kwargs.colour: unexpected keyword argument; ktsync's tasks take message, failures, replay_of",
    ),
    "the message twice": (
        {"args": [MESSAGE], "kwargs": {"message": MESSAGE}},
        "kwargs.message: the message is also args[0]; send it once",
    ),
    "a string as kwargs.message": (
        {"kwargs": {"message": "hello"}},
        "kwargs.message: expected the message as a JSON object, got a string",
    ),
    "failures that are not a count": (
        {"args": [MESSAGE], "kwargs": {"failures": "two"}},
        "kwargs.failures: expected a count of failed attempts, got a string",
    ),
}


@pytest.mark.parametrize(("call", "reason"), CALLS.values(), ids=CALLS.keys())
def test_a_malformed_call_is_dead_lettered_with_its_arguments_as_received(
    worker: Celery,
    fake: FakeControl,
    plain_celery: Celery,
    settings: Settings,
    settled: Callable[..., DeadLetter],
    call: dict[str, Any],
    reason: str,
) -> None:
    # Given a ktsync worker, and another team's plain Celery producer
    # When it calls the upsert task with a wrong shape
    task_id = send(plain_celery, settings, **call)

    # Then the call is an invalid_message dead letter, the reason naming the argument, the arguments kept
    letter = settled(task_id)
    assert (letter.reason, letter.task) == ("invalid_message", UPSERT_TASK)
    assert reason in letter.error["message"], letter.error
    assert letter.error["type"] == "InvalidCall"
    assert letter.message == {"received": {"args": call.get("args", []), "kwargs": call.get("kwargs", {})}}
    # And KlickTipp heard nothing of it
    assert contact_calls(fake) == []


def test_a_message_sent_to_another_types_task_is_an_invalid_message_not_unexpected(
    worker: Celery,
    fake: FakeControl,
    plain_celery: Celery,
    settings: Settings,
    settled: Callable[..., DeadLetter],
) -> None:
    # Given a valid contact.deleted message
    message = deleted("501", EMAIL, at=1_795_341_700)

    # When it is sent to the upsert task's name
    task_id = send(plain_celery, settings, args=[message])

    # Then it is dead-lettered as invalid_message, saying where it belongs; nothing was deleted
    letter = settled(task_id)
    assert letter.reason == "invalid_message"
    assert letter.error["message"] == (
        "type: contact.deleted sent to ktsync.sync_contact, the task for contact.upsert; "
        "send it to ktsync.delete_contact"
    )
    assert letter.message == message
    assert contact_calls(fake) == []

    # And a replay sends it to the task of its own type
    sender = Recorder()
    replay([letter], sender)
    assert [task for task, *_ in sender.sent] == ["ktsync.delete_contact"]


def test_the_message_as_a_keyword_argument_is_accepted(
    worker: Celery, fake: FakeControl, plain_celery: Celery, settings: Settings, outcomes: Outcomes
) -> None:
    # When another team sends the message as kwargs={"message": ...}
    send(plain_celery, settings, kwargs={"message": MESSAGE})

    # Then it is synced like args=[message]
    assert outcomes.wait(1)["synced"] == 1


def test_an_invalid_call_is_never_replayed(
    worker: Celery,
    fake: FakeControl,
    plain_celery: Celery,
    settings: Settings,
    settled: Callable[..., DeadLetter],
) -> None:
    # Given a dead-lettered call that carried the message as a JSON string
    send(plain_celery, settings, args=[json.dumps(MESSAGE)])
    letter = settled()

    # When an operator replays it
    sender = Recorder()
    results = replay([letter], sender)

    # Then it is refused, with the contract's reason: the producer has to send it anew
    assert sender.sent == []
    assert "breaks the contract" in results[0].problem


class Recorder:
    """A replay sender that only records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []

    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str:
        self.sent.append((task, args))
        return task_id


def _task_headers(task: str = UPSERT_TASK, **more: Any) -> dict[str, Any]:
    return {"task": task, "id": str(uuid.uuid4()), "lang": "js", **more}


BODIES: dict[str, tuple[bytes, str, dict[str, Any], str]] = {
    "a body that is not JSON": (
        b'{"v": 1, "email": "alex@malformed.example"',
        "application/json",
        _task_headers(),
        "body: cannot be decoded as application/json",
    ),
    "a body in a content type ktsync never decodes": (
        pickle.dumps(((MESSAGE,), {}, {})),
        "application/x-python-serialize",
        _task_headers(),
        "content_type: application/x-python-serialize is not accepted",
    ),
    "a JSON object instead of [args, kwargs, embed]": (
        json.dumps({"message": MESSAGE}).encode(),
        "application/json",
        _task_headers(),
        "body: expected [args, kwargs, embed], got an object",
    ),
    "keyword arguments that are not an object": (
        json.dumps([[MESSAGE], "kwargs", {}]).encode(),
        "application/json",
        _task_headers(),
        "body.kwargs: expected an object of keyword arguments, got a string",
    ),
    "a task name no ktsync worker knows": (
        json.dumps([[MESSAGE], {}, {}]).encode(),
        "application/json",
        _task_headers("ktsync.sync_contacts"),
        "task: no ktsync worker runs a task named 'ktsync.sync_contacts'",
    ),
    "no task id": (
        json.dumps([[MESSAGE], {}, {}]).encode(),
        "application/json",
        {"task": UPSERT_TASK},
        "headers.id: missing",
    ),
    "no task name": (json.dumps(MESSAGE).encode(), "application/json", {}, "headers.task: missing"),
}


@pytest.mark.parametrize(("body", "content_type", "headers", "reason"), BODIES.values(), ids=BODIES.keys())
def test_a_broker_message_no_task_can_run_is_dead_lettered_with_its_raw_body(
    worker: Celery,
    fake: FakeControl,
    settings: Settings,
    settled: Callable[..., DeadLetter],
    body: bytes,
    content_type: str,
    headers: dict[str, Any],
    reason: str,
) -> None:
    # Given a ktsync worker
    # When a raw message ktsync cannot run arrives on its live queue
    publish(worker, settings, body, content_type=content_type, headers=headers)

    # Then it is an invalid_message dead letter (under its task id, when it has one) with the body as received
    letter = settled(headers.get("id"))
    assert letter.reason == "invalid_message"
    assert reason in letter.error["message"], letter.error
    received = letter.message["received"]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        assert received["body_base64"]
    else:
        assert received["body"] == text
    assert received["content_type"] == content_type
    assert received["queue"] == settings.worker.lane_queue(Lane.LIVE)
    assert letter.task == headers.get("task", "")
    assert contact_calls(fake) == []


def test_a_ktsync_worker_process_dead_letters_both_kinds_and_logs_no_message(
    env: dict[str, str],
    fake: FakeControl,
    app: Celery,
    plain_celery: Celery,
    settings: Settings,
    redis_client: redis.Redis,
    stores: Stores,
    outcomes: Outcomes,
    tmp_path: Path,
) -> None:
    # Given the real `ktsync worker` command with a prefork pool
    with worker_process(env, tmp_path / "worker.log", "--pool=prefork", "--concurrency=1") as worker:
        worker.wait_ready()

        # When a call carries the message as a JSON string, and a body is not JSON
        call_id = send(plain_celery, settings, args=[json.dumps(MESSAGE)])
        headers = _task_headers()
        publish(
            app,
            settings,
            f'[[{{"email": "{EMAIL}"'.encode(),
            content_type="application/json",
            headers=headers,
        )

        # Then both are dead-lettered as invalid_message, and the worker's log quotes neither
        wait_for(lambda: len(stores.dead_letters.list()) == 2 and pending(redis_client, settings) == 0)
        letters = {letter.id: letter for letter in stores.dead_letters.list()}
        assert {letters[call_id].reason, letters[headers["id"]].reason} == {"invalid_message"}
        wait_for(lambda: outcomes.snapshot()["dead_lettered"] == 2)
        log = worker.output()
        assert f"id={headers['id']} outcome=dead_letter reason=invalid_message" in log, log
        assert EMAIL not in log, log
