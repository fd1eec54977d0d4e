"""Reading a task call: the message out of args/kwargs, or every problem named; and the summary shown for it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ktsync.core.contract import FieldError, MessageType
from ktsync.core.summary import summary
from ktsync.worker.calls import (
    Call,
    InvalidCall,
    as_received,
    describe,
    kind_of,
    read_call,
    wrong_task,
)
from ktsync.worker.retry import Action, RetryPolicy, decide

MESSAGE: dict[str, Any] = {
    "v": 1,
    "type": "contact.upsert",
    "source": "hubspot",
    "crm_contact_id": "501",
    "email": "alex@shop.example",
    "properties": {"firstname": "Alex"},
    "occurred_at": 1_795_341_600,
}


@pytest.mark.parametrize(
    ("args", "kwargs", "call"),
    [
        ((MESSAGE,), {}, Call(MESSAGE)),
        ((), {"message": MESSAGE}, Call(MESSAGE)),
        ((MESSAGE,), {"failures": 2, "replay_of": "letter-1"}, Call(MESSAGE, 2, "letter-1")),
        ((), {"message": MESSAGE, "failures": 0, "replay_of": None}, Call(MESSAGE)),
    ],
)
def test_the_accepted_call_shapes_yield_the_message_and_its_bookkeeping(
    args: tuple[Any, ...], kwargs: dict[str, Any], call: Call
) -> None:
    read = read_call(args, kwargs)

    assert read == call
    assert read.problem is None


@pytest.mark.parametrize(
    ("args", "kwargs", "errors"),
    [
        ((json.dumps(MESSAGE),), {}, [("args[0]", "expected the message as a JSON object, got a string (JSON text of an object: send the object itself)")]),
        (("hello",), {}, [("args[0]", "expected the message as a JSON object, got a string")]),
        (([MESSAGE],), {}, [("args[0]", "expected the message as a JSON object, got a list")]),
        ((None,), {}, [("args[0]", "expected the message as a JSON object, got null")]),
        ((True,), {}, [("args[0]", "expected the message as a JSON object, got a boolean")]),
        ((1.5,), {}, [("args[0]", "expected the message as a JSON object, got a number")]),
        ((), {}, [("args", "no message; send args=[message] or kwargs={'message': message}")]),
        ((MESSAGE, 1, 2), {}, [
            ("args[1]", "unexpected positional argument; send args=[message] or kwargs={'message': message}"),
            ("args[2]", "unexpected positional argument; send args=[message] or kwargs={'message': message}"),
        ]),
        ((MESSAGE,), {"message": MESSAGE}, [("kwargs.message", "the message is also args[0]; send it once")]),
        ((), {"message": [1]}, [("kwargs.message", "expected the message as a JSON object, got a list")]),
        ((MESSAGE,), {"colour": "blue"}, [("kwargs.colour", "unexpected keyword argument; ktsync's tasks take message, failures, replay_of")]),
        ((MESSAGE,), {"failures": -1}, [("kwargs.failures", "expected a count of failed attempts, got a number")]),
        ((MESSAGE,), {"failures": True}, [("kwargs.failures", "expected a count of failed attempts, got a boolean")]),
        ((MESSAGE,), {"replay_of": 7}, [("kwargs.replay_of", "expected a dead letter id, got a number")]),
        (("x",), {"colour": 1}, [
            ("args[0]", "expected the message as a JSON object, got a string"),
            ("kwargs.colour", "unexpected keyword argument; ktsync's tasks take message, failures, replay_of"),
        ]),
    ],
)  # fmt: skip
def test_an_invalid_call_names_every_problem_and_keeps_what_was_received(
    args: tuple[Any, ...], kwargs: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    read = read_call(args, kwargs)

    assert read.problem is not None
    assert [(e.field, e.reason) for e in read.problem.errors] == sorted(errors)
    assert read.message == {"received": {"args": list(args), "kwargs": kwargs}}
    assert (read.failures, read.replay_of) == (0, None)


def test_an_invalid_call_is_dead_lettered_as_invalid_message() -> None:
    problem = read_call(("not an object",), {}).problem
    assert problem is not None

    decision = decide(problem, 1, RetryPolicy(), random.Random(0))

    assert (decision.action, decision.reason) == (Action.DEAD_LETTER, "invalid_message")
    assert problem.to_dict() == {
        "errors": [{"field": "args[0]", "reason": "expected the message as a JSON object, got a string"}]
    }


def test_a_message_for_another_task_says_where_it_belongs() -> None:
    error = wrong_task(MessageType.DELETED, "ktsync.sync_contact", MessageType.UPSERT)

    assert isinstance(error, InvalidCall)
    assert error.errors == (
        FieldError(
            "type",
            "contact.deleted sent to ktsync.sync_contact, the task for contact.upsert; send it to ktsync.delete_contact",
        ),
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "shown"),
    [
        ((MESSAGE,), {}, "contact.upsert hubspot/501"),
        ((), {"message": MESSAGE, "failures": 3}, "contact.upsert hubspot/501"),
        (({"type": "klicktipp.deletion_requested", "email": "a@b.example", "klicktipp_id": 77},), {}, "klicktipp.deletion_requested -/77"),
        (({**MESSAGE, "crm_contact_id": "alex@shop.example"},), {}, "contact.upsert hubspot/-"),
        (({**MESSAGE, "source": "Alex Example"},), {}, "contact.upsert -/501"),
        (({**MESSAGE, "type": "alex@shop.example"},), {}, "invalid message"),
        (({**MESSAGE, "type": ["contact.upsert"]},), {}, "invalid message"),
        ((json.dumps(MESSAGE),), {}, "invalid call"),
        ((MESSAGE, "alex@shop.example"), {}, "invalid call"),
        ((), {}, "invalid call"),
    ],
)  # fmt: skip
def test_the_summary_names_the_contact_never_its_data(
    args: tuple[Any, ...], kwargs: dict[str, Any], shown: str
) -> None:
    assert describe(args, kwargs) == shown
    assert "alex" not in describe(args, kwargs)


def test_the_summary_of_a_message_matches_the_producers() -> None:
    """One rule on both sides: what ktsync's producer sets as argsrepr is what the worker shows."""
    from ktsync.producers import enqueue

    assert enqueue.summary is summary


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), (False, "a boolean"), (3, "a number"), ("x", "a string"), ([], "a list"), ({}, "an object"),
     (b"x", "a bytes")],
)  # fmt: skip
def test_kinds_are_named_as_a_json_reader_would(value: object, kind: str) -> None:
    assert kind_of(value) == kind


def test_what_json_cannot_hold_is_kept_as_its_repr() -> None:
    assert as_received([{"a": 1}, None]) == [{"a": 1}, None]
    assert as_received({(1, 2): "x"}) == "{(1, 2): 'x'}"
    assert as_received(float("nan")) == "nan"
