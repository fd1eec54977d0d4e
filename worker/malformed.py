"""Nothing lost from a message no ktsync task can run: the worker's consumer dead-letters it as received.

Celery's consumer logs and acknowledges a message whose body cannot be decoded, and rejects (which on
Redis drops) one whose content type is not accepted, whose task name no worker knows, or whose body is
not a task call: either way the message is gone. ktsync's consumer stores each as an
``invalid_message`` dead letter with the body as received (text, or base64 when it is not UTF-8; cut
at :data:`MAX_BODY` bytes) and the reason, counts it as ``dead_lettered``, and only then acknowledges
it. Should Redis be unreachable, the message goes back to its queue instead.

The call shape inside a decodable body (``args=[message]``) is checked by the task itself, see
:mod:`ktsync.worker.calls`.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed

from ktsync.core.contract import FieldError
from ktsync.worker.calls import as_received
from ktsync.worker.deadletter import DeadLetter
from ktsync.worker.request import InvalidTaskCall
from ktsync.worker.runtime import Tenants
from ktsync.worker.tasks import REDIS_DOWN

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # bytes of a body kept in its dead letter (ktsync's messages are a few hundred)
KEPT_HEADERS = ("task", "id", "lang")


def received(
    body: bytes | str | None,
    *,
    content_type: str | None,
    content_encoding: str | None,
    headers: Mapping[str, Any] | None,
    queue: str | None,
) -> dict[str, Any]:
    """What a dead letter keeps of a broker message: its body as text (base64 when not UTF-8), how it was
    encoded, the headers naming its task, and its queue. Never decodes the body beyond UTF-8."""
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    kept: dict[str, Any] = {"size": len(raw)} if len(raw) > MAX_BODY else {}
    raw = raw[:MAX_BODY]
    try:
        kept["body"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        kept["body_base64"] = base64.b64encode(raw).decode("ascii")
    header_values = headers if isinstance(headers, Mapping) else {}
    kept.update(
        content_type=content_type,
        content_encoding=content_encoding,
        headers={name: as_received(header_values[name]) for name in KEPT_HEADERS if name in header_values},
        queue=queue,
    )
    return kept


def body_letter(
    kept: Mapping[str, Any], errors: Sequence[FieldError], *, now: float, host: str, new_id: str
) -> DeadLetter:
    """The ``invalid_message`` dead letter of a broker message (``kept``: see :func:`received`)."""
    headers = kept.get("headers") or {}
    task_id, task = headers.get("id"), headers.get("task")
    return DeadLetter(
        id=task_id if isinstance(task_id, str) and 0 < len(task_id) <= 200 else new_id,
        message={"received": dict(kept)},
        task=task if isinstance(task, str) else "",
        reason="invalid_message",
        error={
            "type": "InvalidBrokerMessage",
            "message": "; ".join(str(e) for e in errors),
            "errors": [{"field": e.field, "reason": e.reason} for e in errors],
        },
        attempts=1,
        first_failed_at=now,
        last_failed_at=now,
        host=host,
    )


def invalid_task_errors(exc: BaseException, content_type: str | None) -> list[FieldError]:
    """Why Celery found a message invalid (a content type it must not decode, a body not a task call)."""
    if isinstance(exc, InvalidTaskCall):
        return list(exc.errors)
    if isinstance(exc, ContentDisallowed):
        return [
            FieldError(
                "content_type", f"{content_type} is not accepted; ktsync's tasks take application/json"
            )
        ]
    return [FieldError("message", str(exc))]


def dead_lettering_consumer(holder: Tenants) -> type[Consumer]:
    """Celery's consumer, with every "cannot run this message" path dead-lettering instead of dropping.

    Installed as the app's ``worker_consumer``; the dead letters go to the store of ``holder``'s runtime."""

    class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
        def on_decode_error(self, message: Any, exc: BaseException) -> None:
            reason = (
                f"cannot be decoded as {message.content_type or 'a message without a content type'}: {exc}"
            )
            self._dead_letter(message, [FieldError("body", reason)])

        def on_unknown_message(self, body: Any, message: Any) -> None:
            self._dead_letter(message, [FieldError("headers.task", "missing: not a Celery task message")])

        def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
            name = (message.headers or {}).get("task")
            reason = f"no ktsync worker runs a task named {name!r}; the task names are in the README"
            self._dead_letter(message, [FieldError("task", reason)])

        def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
            self._dead_letter(message, invalid_task_errors(exc, message.content_type))

        def _dead_letter(self, message: Any, errors: list[FieldError]) -> None:
            kept = received(
                message.body,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                headers=message.headers,
                queue=(message.delivery_info or {}).get("routing_key"),
            )
            letter = body_letter(
                kept, errors, now=time.time(), host=socket.gethostname(), new_id=uuid.uuid4().hex
            )
            try:
                runtime = holder.get()
                runtime.stores.dead_letters.add(letter)
                runtime.stores.stats.incr("dead_lettered")
            except REDIS_DOWN as exc:
                log.warning("task=%s id=%s requeued: Redis unreachable (%s)", letter.task, letter.id, exc)
                message.reject_log_error(log, self.connection_errors, requeue=True)
                return
            except Exception:
                # Left unacknowledged: never lost, and back after a restart rather than in a tight loop.
                log.exception(
                    "task=%s id=%s: could not dead-letter an invalid message", letter.task, letter.id
                )
                return
            log.warning(
                "task=%s id=%s outcome=dead_letter reason=invalid_message: %s",
                letter.task,
                letter.id,
                letter.error["message"],
                extra={
                    "task": letter.task,
                    "task_id": letter.id,
                    "outcome": "dead_letter",
                    "reason": "invalid_message",
                },
            )
            message.ack_log_error(log, self.connection_errors)

    return DeadLetteringConsumer
