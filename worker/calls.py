"""How a ktsync task was called: its message out of ``args``/``kwargs``, or why the call is invalid. Pure.

The wire (any producer, any language): ``args=[message]``, or ``kwargs={"message": message}``; ktsync's
own retries and replays add ``failures`` (attempts failed so far) and ``replay_of`` (a dead letter's id)
as keyword arguments. Anything else is an invalid call: dead-lettered as ``invalid_message`` with the
arguments as received, never acknowledged away. :func:`describe` is what Flower, ``celery events`` and
``celery inspect`` show for a call: which contact, never personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ktsync.contract import TASK_NAMES, ContractError, FieldError, MessageType
from ktsync.contract_patterns import SOURCE_PATTERN

MESSAGE_KWARG = "message"
RETRY_KWARGS = ("failures", "replay_of")
INVALID_CALL = "invalid call"  # what Flower shows for a call that carries no message
INVALID_MESSAGE = "invalid message"  # ... and for a message of no known type
_SHAPE = "send args=[message] or kwargs={'message': message}"
# What a summary may show of an id: a plain token. Anything else (an address used as an id) shows as "-".
_SHOWN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_KNOWN_TYPES = frozenset(MessageType)


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
    errors = [*_message_problems(args, kwargs), *_kwarg_problems(kwargs)]
    if errors:
        received = {"args": as_received(list(args)), "kwargs": as_received(dict(kwargs))}
        return Call({"received": received}, problem=InvalidCall(errors))
    message = args[0] if args else kwargs[MESSAGE_KWARG]
    failures, replay_of = kwargs.get("failures", 0), kwargs.get("replay_of")
    return Call(_as_dict(message), _as_int(failures), replay_of if isinstance(replay_of, str) else None)


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
    known = (MESSAGE_KWARG, *RETRY_KWARGS)
    errors = [
        FieldError(f"kwargs.{name}", f"unexpected keyword argument; ktsync's tasks take {', '.join(known)}")
        for name in kwargs
        if name not in known
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
    call = read_call(args, kwargs)
    return INVALID_CALL if call.problem is not None else summary(call.message)


def summary(message: Mapping[str, Any]) -> str:
    """The message's type, source and contact id; whatever is not a plain token shows as "-"."""
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _KNOWN_TYPES:
        return INVALID_MESSAGE
    return f"{kind} {contact_ref(message)}"


def contact_ref(data: Mapping[str, Any]) -> str:
    """``hubspot/501``: the source and the CRM (else KlickTipp) contact id, "-" for what is not shown."""
    source = data.get("source")
    who = _shown_id(data.get("crm_contact_id")) or _shown_id(data.get("klicktipp_id")) or "-"
    shown_source = source if isinstance(source, str) and re.fullmatch(SOURCE_PATTERN, source) else "-"
    return f"{shown_source}/{who}"


def _shown_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value)
    return text if _SHOWN_ID.fullmatch(text) else ""


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0
