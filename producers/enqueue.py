"""Validate messages with the contract and publish them as Celery tasks on the Redis broker."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from config.celery import celery_config
from config.settings import Settings
from ktsync.contract import TASK_NAMES, MessageType, parse_message

PIPELINE = 500  # messages per Redis round trip
ENQUEUED_AT_HEADER = "ktsync_enqueued_at"


def summary(message: Mapping[str, Any]) -> str:
    """What Flower shows as the task's arguments: which contact, never its personal data.

    (Celery's default is a repr of the whole message, e-mail addresses included, and computing it
    was a quarter of the enqueue cost.)
    """
    who = message.get("crm_contact_id") or message.get("klicktipp_id") or "-"
    return f"{message.get('type', '?')} {message.get('source', '-')}/{who}"


def _task_for(message: Mapping[str, Any], validated: bool) -> str:
    kind = MessageType(str(message.get("type"))) if validated else parse_message(dict(message)).type
    return TASK_NAMES[kind]


class EnqueueError(RuntimeError):
    """The broker could not take the message (e.g. Redis unreachable); nothing was enqueued."""


class Producer:
    """Enqueue contract-valid messages; invalid ones raise :class:`ktsync.contract.ContractError`."""

    def __init__(self, settings: Settings) -> None:
        self._app = Celery("ktsync-producer", set_as_current=False)
        self._app.conf.update(celery_config(settings))
        self._queue = settings.worker.queue

    def enqueue(self, message: Mapping[str, Any]) -> str:
        """Validate and enqueue one message; return its task id."""
        return self.enqueue_many([message])[0]

    def enqueue_many(self, messages: Iterable[Mapping[str, Any]], *, validated: bool = False) -> list[str]:
        """Validate every message first (unless the caller just did), then enqueue them all pipelined.

        The publishes go to Redis in pipelined batches (kombu's ``Producer.batch``): one round trip
        per ``PIPELINE`` messages instead of one each. Either every message is enqueued or
        :class:`EnqueueError` is raised (a batch is not flushed half-way on an error).
        """
        batch = [(_task_for(m, validated), dict(m)) for m in messages]
        try:
            with self._app.producer_or_acquire() as producer, producer.batch(max_size=PIPELINE):
                # The enqueue time travels as a header: `ktsync status` reports the oldest message's age.
                headers = {ENQUEUED_AT_HEADER: time.time()}
                return [
                    self._app.send_task(
                        name,
                        args=[body],
                        queue=self._queue,
                        producer=producer,
                        headers=headers,
                        argsrepr=summary(body),
                        kwargsrepr="",
                    ).id
                    for name, body in batch
                ]
        except OperationalError as exc:
            raise EnqueueError(f"could not enqueue: the broker is unreachable ({exc})") from exc

    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str:
        """Publish one task as it is (for replays: the message was validated when first enqueued)."""
        try:
            described = summary(args[0]) if args and isinstance(args[0], Mapping) else task
            result = self._app.send_task(
                task,
                args=args,
                kwargs=kwargs,
                task_id=task_id,
                queue=self._queue,
                argsrepr=described,
                kwargsrepr="",
            )
            return str(result.id)
        except OperationalError as exc:
            raise EnqueueError(f"could not enqueue: the broker is unreachable ({exc})") from exc

    def close(self) -> None:
        self._app.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
