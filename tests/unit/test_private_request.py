"""What a ktsync task's request shows (a summary, never the message), and the dead letter of a body no task
can run. Requests are built from in-memory kombu messages: no broker, no worker."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import ContentDisallowed
from kombu.message import Message

from ktsync.core.contract import FieldError
from ktsync.worker.malformed import MAX_BODY, body_letter, invalid_task_errors, received
from ktsync.worker.request import (
    HIDDEN,
    InvalidTaskCall,
    MessageRequest,
    NotifyRequest,
    PrivateRequest,
    exception_name,
    payload_problems,
    private_fields,
)

EMAIL = "alex@shop.example"
MESSAGE = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": "501", "email": EMAIL,
           "properties": {"firstname": "Alex"}, "occurred_at": 1_795_341_600}  # fmt: skip
TASK = "ktsync.sync_contact"


class Eventer:
    """Records the events a request sends."""

    enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, type: str, **fields: Any) -> None:
        self.sent.append((type, fields))


def sync_contact(*args: Any, **kwargs: Any) -> None:
    """Stands in for the task: these tests never run it."""


@pytest.fixture
def app() -> Celery:
    app = Celery("unit", set_as_current=False)
    app.task(name=TASK, Request=MessageRequest, shared=False)(sync_contact)
    return app


def task_message(body: object, *, argsrepr: str | None = None, **headers: Any) -> Message:
    """A protocol 2 message as a producer publishes it (``argsrepr=None``: no repr headers, as celery-node)."""
    reprs = {} if argsrepr is None else {"argsrepr": argsrepr, "kwargsrepr": "{}"}
    return Message(
        body=json.dumps(body).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": TASK, "id": "t-1", **reprs, **headers},
        delivery_info={"routing_key": "ktsync.live"},
        accept=["application/json"],
    )


def request(app: Celery, message: Message, eventer: Eventer | None = None) -> PrivateRequest:
    return MessageRequest(message, app=app, task=app.tasks[TASK], eventer=eventer)


@pytest.mark.parametrize("argsrepr", [None, repr([MESSAGE])])
def test_events_and_inspect_see_the_summary_whatever_the_producer_set(
    app: Celery, argsrepr: str | None
) -> None:
    # Given a message whose producer set no reprs, or Celery's default (the whole message)
    req = request(app, task_message([[MESSAGE], {}, {}], argsrepr=argsrepr))

    # Then the request shows the summary, in the task-received fields, inspect's info and the pool's copy
    assert (req.argsrepr, req.kwargsrepr) == ("contact.upsert hubspot/501", "")
    for info in (req.info(), req.info(safe=True)):
        assert (info["args"], info["kwargs"]) == ("contact.upsert hubspot/501", "")
    assert (req.request_dict["argsrepr"], req.request_dict["kwargsrepr"]) == (
        "contact.upsert hubspot/501",
        "",
    )
    # And the task still gets the message itself
    assert req.args == [MESSAGE]


def test_a_malformed_call_shows_as_an_invalid_call(app: Celery) -> None:
    req = request(app, task_message([[json.dumps(MESSAGE)], {}, {}], argsrepr=repr([json.dumps(MESSAGE)])))

    assert req.argsrepr == "invalid call"
    assert EMAIL not in json.dumps(req.info(), default=str)


def test_failed_and_retried_events_name_the_error_type_only(app: Celery) -> None:
    eventer = Eventer()
    req = request(app, task_message([[MESSAGE], {}, {}]), eventer)

    req.send_event("task-retried", exception=f"ServerError('{EMAIL} refused')", traceback=f"... {EMAIL} ...")
    req.send_event("task-failed", exception=f"<odd {EMAIL}>", traceback="...")
    req.send_event("task-succeeded", result="{'status': 'synced', 'klicktipp_id': '9'}", runtime=0.1)

    assert eventer.sent == [
        ("task-retried", {"uuid": "t-1", "exception": "ServerError", "traceback": ""}),
        ("task-failed", {"uuid": "t-1", "exception": "error", "traceback": ""}),
        (
            "task-succeeded",
            {"uuid": "t-1", "result": "{'status': 'synced', 'klicktipp_id': '9'}", "runtime": 0.1},
        ),
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"message": MESSAGE}, [("body", "expected [args, kwargs, embed], got an object")]),
        ("abc", [("body", "expected [args, kwargs, embed], got a string")]),
        ([[MESSAGE], {}], [("body", "expected [args, kwargs, embed], got a list")]),
        (["abc", {}, {}], [("body.args", "expected a list of positional arguments, got a string")]),
        ([[MESSAGE], [], 5], [
            ("body.kwargs", "expected an object of keyword arguments, got a list"),
            ("body.embed", "expected an object or null, got a number"),
        ]),
    ],
)  # fmt: skip
def test_a_body_that_is_not_a_task_call_is_an_invalid_task(
    app: Celery, body: object, errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidTaskCall) as raised:
        request(app, task_message(body))

    assert [(e.field, e.reason) for e in raised.value.errors] == errors


def test_a_message_without_a_task_id_is_an_invalid_task(app: Celery) -> None:
    message = task_message([[MESSAGE], {}, {}])
    del message.headers["id"]

    with pytest.raises(InvalidTaskCall) as raised:
        request(app, message)

    assert raised.value.errors == (FieldError("headers.id", "missing"),)


@pytest.mark.parametrize(
    ("summarize", "args", "kwargs", "shown"),
    [
        (NotifyRequest.summarize, ["https://crm.example/hook?token=s3cret", {"source": "hubspot", "crm_contact_id": "501", "email": EMAIL}], {}, "callback hubspot/501"),
        (NotifyRequest.summarize, [], {"url": "u", "payload": {"source": "zoho", "crm_contact_id": "7"}}, "callback zoho/7"),
        (NotifyRequest.summarize, ["u", EMAIL], {}, "invalid call"),
        (PrivateRequest.summarize, [], {}, ""),
        (PrivateRequest.summarize, [EMAIL], {}, HIDDEN),
    ],
)  # fmt: skip
def test_other_tasks_show_no_url_and_no_address(
    summarize: Callable[[list[Any], dict[str, Any]], str], args: list[Any], kwargs: dict[str, Any], shown: str
) -> None:
    assert summarize(args, kwargs) == shown


@pytest.mark.parametrize(
    ("text", "name"),
    [("ServerError('boom')", "ServerError"), ("None", "None"), ("celery.exceptions.Retry()", "celery.exceptions.Retry"),
     ("'alex@shop.example'", "error"), ("", "error")],
)  # fmt: skip
def test_an_exception_shows_as_its_type(text: str, name: str) -> None:
    assert exception_name(text) == name


def test_fields_without_exception_or_traceback_pass_unchanged() -> None:
    assert private_fields({"result": "x", "runtime": 1}) == {"result": "x", "runtime": 1}
    assert payload_problems([[], {}, None]) == []


# -- the dead letter of a broker message ------------------------------------------------------------


def test_a_text_body_is_kept_as_text_with_the_headers_naming_its_task() -> None:
    kept = received(
        b'{"v": 1, oops',
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": TASK, "id": "t-9", "lang": "js", "argsrepr": f"[{EMAIL}]"},
        queue="ktsync.live",
    )

    assert kept == {"body": '{"v": 1, oops', "content_type": "application/json", "content_encoding": "utf-8",
                    "headers": {"task": TASK, "id": "t-9", "lang": "js"}, "queue": "ktsync.live"}  # fmt: skip


def test_a_binary_body_is_kept_in_base64_and_a_huge_one_cut() -> None:
    binary = received(b"\x80\x05\xff", content_type="application/x-python-serialize", content_encoding="binary",
                      headers=None, queue=None)  # fmt: skip
    huge = received("x" * (MAX_BODY + 10), content_type="application/json", content_encoding="utf-8",
                    headers={}, queue="q")  # fmt: skip

    assert base64.b64decode(binary["body_base64"]) == b"\x80\x05\xff"
    assert "body" not in binary
    assert (len(huge["body"]), huge["size"]) == (MAX_BODY, MAX_BODY + 10)


def test_the_letter_of_a_broker_message_is_an_invalid_message_under_its_task_id() -> None:
    kept = received(b"garbage", content_type="application/json", content_encoding="utf-8",
                    headers={"task": TASK, "id": "t-9"}, queue="ktsync.live")  # fmt: skip
    errors = [FieldError("body", "cannot be decoded as application/json: Expecting value")]

    letter = body_letter(kept, errors, now=100.0, host="w1", new_id="fresh")
    anonymous = body_letter(received(b"x", content_type=None, content_encoding=None, headers={}, queue=None),
                            errors, now=100.0, host="w1", new_id="fresh")  # fmt: skip

    assert (letter.id, letter.task, letter.reason, letter.attempts) == ("t-9", TASK, "invalid_message", 1)
    assert letter.message == {"received": kept}
    assert letter.error == {
        "type": "InvalidBrokerMessage",
        "message": "body: cannot be decoded as application/json: Expecting value",
        "errors": [{"field": "body", "reason": "cannot be decoded as application/json: Expecting value"}],
    }
    assert (anonymous.id, anonymous.task) == ("fresh", "")


def test_why_celery_found_a_message_invalid_is_named() -> None:
    assert invalid_task_errors(ContentDisallowed("pickle"), "application/x-python-serialize") == [
        FieldError(
            "content_type",
            "application/x-python-serialize is not accepted; ktsync's tasks take application/json",
        )
    ]
    assert invalid_task_errors(InvalidTaskCall([FieldError("body", "x")]), "application/json") == [
        FieldError("body", "x")
    ]
    assert invalid_task_errors(ValueError("invalid ETA value 'soon'"), None) == [
        FieldError("message", "invalid ETA value 'soon'")
    ]
