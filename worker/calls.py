"""How a ktsync task was called: its message out of ``args``/``kwargs``, or why the call is invalid. Pure.

The wire (any producer, any language): ``args=[message]``, or ``kwargs={"message": message}``; ktsync's
own retries and replays add ``failures`` (attempts failed so far) and ``replay_of`` (a dead letter's id)
as keyword arguments. Anything else is an invalid call: dead-lettered as ``invalid_message`` with the
arguments as received, never acknowledged away. :func:`describe` is what Flower, ``celery events`` and
``celery inspect`` show for a call: which contact, never personal data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ktsync.core.contract import TASK_NAMES, ContractError, FieldError, MessageType
from ktsync.core.summary import summary

MESSAGE_KWARG = "message"
RETRY_KWARGS = ("failures", "replay_of")
INVALID_CALL = (
    "invalid call"  # what Flower shows for a call that carries no message (else ktsync.core.summary)
)
_KNOWN_KWARGS = (MESSAGE_KWARG, *RETRY_KWARGS)
_SHAPE = "send args=[message] or kwargs={'message': message}"


class InvalidCall(ContractError):
    """A task call that carries no single message of the task's type; ``errors`` name what is wrong
    (``args[0]``, ``kwargs.colour``, ``type``). Dead-lettered as ``invalid_message``, as any message
    that breaks the contract."""


@dataclass(frozen=True)
class Call:
    """A task call read: the message with the retry bookkeeping, or what was received and the problem."""

    message: Mapping[str, Any]  # the message; for an invalid call {"received": {"args": ..., "kwargs": ...}}
    failures: int = 0
    replay_of: str | None = None
    problem: InvalidCall | None = field(default=None, compare=False)


def read_call(args: Sequence[object], kwargs: Mapping[str, object]) -> Call:
    """The call's message and bookkeeping; an invalid call keeps what was received and every problem."""
    errors = _problems(args, kwargs)
    if errors:
        received = {"args": as_received(list(args)), "kwargs": as_received(dict(kwargs))}
        return Call({"received": received}, problem=InvalidCall(errors))
    failures, replay_of = kwargs.get("failures", 0), kwargs.get("replay_of")
    return Call(_message(args, kwargs), _as_int(failures), replay_of if isinstance(replay_of, str) else None)


def _problems(args: Sequence[object], kwargs: Mapping[str, object]) -> list[FieldError]:
    return [*_message_problems(args, kwargs), *_kwarg_problems(kwargs)]


def _message(args: Sequence[object], kwargs: Mapping[str, object]) -> dict[str, Any]:
    """The message of a call without problems (a JSON object: a dict as the broker delivers it, not copied)."""
    value = args[0] if args else kwargs[MESSAGE_KWARG]
    if isinstance(value, dict):
        return value
    return dict(value) if isinstance(value, Mapping) else {}


def _message_problems(args: Sequence[object], kwargs: Mapping[str, object]) -> list[FieldError]:
    if args and MESSAGE_KWARG in kwargs:
        return [FieldError("kwargs.message", "the message is also args[0]; send it once")]
    extra = [
        FieldError(f"args[{i}]", f"unexpected positional argument; {_SHAPE}") for i in range(1, len(args))
    ]
    if args:
        return [*_object_problem("args[0]", args[0]), *extra]
    if MESSAGE_KWARG in kwargs:
        return _object_problem("kwargs.message", kwargs[MESSAGE_KWARG])
    return [FieldError("args", f"no message; {_SHAPE}")]


def _object_problem(where: str, value: object) -> list[FieldError]:
    if isinstance(value, Mapping):
        return []
    reason = f"expected the message as a JSON object, got {kind_of(value)}"
    if isinstance(value, str) and _is_json_object(value):
        reason += " (JSON text of an object: send the object itself)"
    return [FieldError(where, reason)]


def _kwarg_problems(kwargs: Mapping[str, object]) -> list[FieldError]:
    errors = [
        FieldError(
            f"kwargs.{name}", f"unexpected keyword argument; ktsync's tasks take {', '.join(_KNOWN_KWARGS)}"
        )
        for name in kwargs
        if name not in _KNOWN_KWARGS
    ]
    failures = kwargs.get("failures", 0)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        errors.append(
            FieldError("kwargs.failures", f"expected a count of failed attempts, got {kind_of(failures)}")
        )
    replay_of = kwargs.get("replay_of")
    if replay_of is not None and not isinstance(replay_of, str):
        errors.append(FieldError("kwargs.replay_of", f"expected a dead letter id, got {kind_of(replay_of)}"))
    return errors


def wrong_task(kind: MessageType, task: str, expected: MessageType) -> InvalidCall:
    """A valid message sent to the task of another message type."""
    reason = f"{kind} sent to {task}, the task for {expected}; send it to {TASK_NAMES[kind]}"
    return InvalidCall([FieldError("type", reason)])


def kind_of(value: object) -> str:
    """A JSON reader's name for ``value``'s type: "a string", "a list", "null"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def as_received(value: object) -> Any:
    """``value`` as JSON can hold it: itself when it is JSON data (all a broker delivers), else its repr."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return repr(value)


def describe(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
    """What task events and ``inspect`` show for a call: ``contact.upsert hubspot/501``, never its data."""
    # Run by the consumer for every task received: no Call, no copy, nothing kept of an invalid call.
    return INVALID_CALL if _problems(args, kwargs) else summary(_message(args, kwargs))


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0
