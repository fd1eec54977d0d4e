"""What Flower, ``celery events`` and ``celery inspect`` see of a ktsync task: a summary, never personal data.

Celery shows a task's ``argsrepr``/``kwargsrepr`` as its producer set them, which by default is a repr
of the whole message, e-mail address included (``celery-node`` cannot set them at all), and ``inspect
active``/``reserved``/``query_task`` show the arguments themselves. A ktsync task's request replaces
both with the worker's own summary (``contact.upsert hubspot/501``) whatever the producer sent, shows
only that to ``inspect``, and keeps exception texts and tracebacks (which may quote a value) out of the
``task-failed`` and ``task-retried`` events: the worker log and the dead letter have them.

The ``task-received`` event is sent from the request's ``argsrepr``/``kwargsrepr``; every other task
event goes through :meth:`PrivateRequest.send_event`.

A body that is not Celery's ``[args, kwargs, embed]`` raises :class:`InvalidTaskCall`, which the
worker's consumer dead-letters with the body as received (see :mod:`ktsync.worker.malformed`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from celery.exceptions import InvalidTaskError
from celery.worker.request import Request

from ktsync.core.contract import FieldError
from ktsync.core.summary import contact_ref
from ktsync.worker.calls import INVALID_CALL, describe, kind_of

HIDDEN = "(arguments hidden)"
_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class InvalidTaskCall(InvalidTaskError):  # type: ignore[misc]
    """A message of a ktsync task whose body is not a task call; ``errors`` say which part and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def payload_problems(payload: object) -> list[FieldError]:
    """Why a decoded body is not ``[args, kwargs, embed]`` (Celery's message protocol 2); [] if it is."""
    if not isinstance(payload, list | tuple) or len(payload) != 3:
        return [FieldError("body", f"expected [args, kwargs, embed], got {kind_of(payload)}")]
    args, kwargs, embed = payload
    problems = []
    if not isinstance(args, list | tuple):
        problems.append(
            FieldError("body.args", f"expected a list of positional arguments, got {kind_of(args)}")
        )
    if not isinstance(kwargs, Mapping):
        problems.append(
            FieldError("body.kwargs", f"expected an object of keyword arguments, got {kind_of(kwargs)}")
        )
    if embed is not None and not isinstance(embed, Mapping):
        problems.append(FieldError("body.embed", f"expected an object or null, got {kind_of(embed)}"))
    return problems


def exception_name(text: object) -> str:
    """``ServerError('… alex@shop.example …')`` -> ``ServerError``: an error's type, never its text."""
    found = _LEADING_NAME.match(str(text))
    return found.group(0) if found else "error"


def private_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A task event's fields without what may quote personal data: exception texts and tracebacks."""
    shown = dict(fields)
    if "exception" in shown:
        shown["exception"] = exception_name(shown["exception"])
    if "traceback" in shown:
        shown["traceback"] = ""
    return shown


class PrivateRequest(Request):  # type: ignore[misc]
    """A ktsync task's request; subclasses say how their task's call is summarised (:meth:`summarize`)."""

    @staticmethod
    def summarize(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
        return "" if not args and not kwargs else HIDDEN

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(message, *args, **kwargs)
        except KeyError as exc:  # headers without the task's id
            missing = exc.args[0] if exc.args else "id"
            raise InvalidTaskCall([FieldError(f"headers.{missing}", "missing")]) from exc
        except (TypeError, ValueError) as exc:  # a body that does not unpack into three parts
            body = kwargs.get("body") if kwargs.get("decoded") else message.payload
            raise InvalidTaskCall(payload_problems(body) or [FieldError("message", str(exc))]) from exc
        problems = payload_problems(self._payload)
        if problems:
            raise InvalidTaskCall(problems)
        shown = self.summarize(self._args, self._kwargs)
        self._argsrepr, self._kwargsrepr = shown, ""
        # The copy the pool's trace and Celery's own log lines read.
        self._request_dict.update(argsrepr=shown, kwargsrepr="")

    def info(self, safe: bool = False) -> dict[str, Any]:
        """What ``inspect active``/``reserved``/``scheduled`` and ``query_task`` show: the summary, even
        when not asked for ``safe``."""
        shown: dict[str, Any] = super().info(safe=True)
        return shown

    def send_event(self, type: str, **fields: Any) -> None:
        super().send_event(type, **private_fields(fields))


class MessageRequest(PrivateRequest):
    """The request of a contact message task: ``contact.upsert hubspot/501``, or ``invalid call``."""

    summarize = staticmethod(describe)


class NotifyRequest(PrivateRequest):
    """The request of the CRM callback task (``url``, ``payload``): ``callback hubspot/501``."""

    @staticmethod
    def summarize(args: Sequence[object], kwargs: Mapping[str, object]) -> str:
        payload = args[1] if len(args) > 1 else kwargs.get("payload")
        return f"callback {contact_ref(payload)}" if isinstance(payload, Mapping) else INVALID_CALL
