"""ktsync's broker transport: kombu's Redis transport with two repairs for a Redis that goes away.

Selected by the Celery setting ``broker_transport`` (:data:`ktsync.config.celery.BROKER_TRANSPORTS`);
producers use it too. ``tests/integration/test_broker_transport.py`` reproduces both failures against
kombu's own transport (Celery 5.7 / kombu 5.7; together they failed 3 and 4 of two batches of 8 runs
of the Redis-restart test here).

**A message taken as Redis goes away is kept, not lost.** Kombu takes a message with ``BRPOP`` (which
removes it from Redis), then records it in the unacked hash; when Redis goes away between the two,
the message is only in the worker's memory, and kombu drops it with the failed connection. Here it is
held in the process, and put back at the head of its queue by the first channel that reaches Redis
again (the worker's reconnect). A process that ends while still holding messages writes them to a
file and logs where, as kombu does with messages it cannot restore. What remains: Redis removing a
message for a ``BRPOP`` whose reply never reaches the worker; only a move into a list of the worker's
own (a reliable queue) closes that, and kombu has none.

**A lost connection does not end the worker.** After a lost connection, Celery collects the
consumer's connection, then closes it. Kombu's Redis ``Channel.close`` first does what needs Redis —
it reads the outstanding ``BRPOP`` reply and deletes the auto-delete fanout bindings (Celery's
pidbox has one) — and only then closes the channel. With Redis gone the first step raises, the
error is swallowed as a connection error, the channel stays open, and the collect detaches the
transport. The close that follows tries to restore the channel's unacknowledged messages through a
new connection pool and fails on the detached transport: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``, which Celery takes for an unrecoverable error: the worker exits. Here the
channel closes in that first attempt all the same, as it does when Redis answers; what it cannot
restore without Redis stays in kombu's unacked hash, from which ktsync's crash recovery
(``worker/recovery``) puts it back within seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

logger = logging.getLogger(__name__)


class Held:
    """Messages taken from Redis but not recorded as unacknowledged there: (payload, exchange, routing key).

    One per process: the connection that took a message is gone by the time one can put it back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[dict[str, Any], str, str]] = []

    def hold(self, payload: dict[str, Any], exchange: str, routing_key: str) -> None:
        with self._lock:
            self._messages.append((payload, exchange, routing_key))

    def take(self) -> list[tuple[dict[str, Any], str, str]]:
        with self._lock:
            messages, self._messages = self._messages, []
        return messages


HELD = Held()


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:
        try:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
        except self.channel.connection_errors:
            delivery = message.delivery_info
            HELD.hold(message._raw, delivery["exchange"], delivery["routing_key"])
            logger.warning(
                "broker: a message taken from %s as Redis went away is held, to be put back when Redis is back",
                delivery["routing_key"],
            )
            raise


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # raises when Redis cannot be reached
        self._put_back_held()

    def _put_back_held(self) -> None:
        messages = HELD.take()
        if not messages:
            return
        try:
            with self.conn_or_acquire() as client, client.pipeline() as pipe:
                for payload, exchange, routing_key in messages:
                    self._do_restore_message(payload, exchange, routing_key, pipe)  # type: ignore[no-untyped-call]
                pipe.execute()
        except self.connection_errors:
            for message in messages:
                HELD.hold(*message)
            return
        logger.warning("broker: %d message(s) held while Redis was away put back at the head of their queues",
                       len(messages))  # fmt: skip

    def close(self) -> None:
        try:
            super().close()  # type: ignore[no-untyped-call]
        except self.connection_errors:
            if not self.closed:  # kombu's close stopped in its Redis steps: finish it without them
                self.connection.cycle.discard(self)
                self._disconnect_pools()  # type: ignore[no-untyped-call]
                self._close_clients()  # type: ignore[no-untyped-call]
                # Marks it closed, then tries to restore its unacked messages (they stay in the unacked
                # hash when Redis is still away).
                with contextlib.suppress(*self.connection_errors):
                    virtual.Channel.close(self)  # type: ignore[no-untyped-call]
            raise


class Transport(kombu_redis.Transport):
    Channel = Channel


TlsTransport = Transport  # the same, for rediss:// URLs (a name of its own so connections say rediss://)


@atexit.register
def _dump_held() -> None:
    """A process that ends holding messages writes them to a file, as kombu does with unrestorable ones."""
    messages = HELD.take()
    if messages:
        from kombu.transport.virtual import base

        logger.error("broker: %d message(s) taken as Redis went away could not be put back", len(messages))
        base.emergency_dump_state([list(message) for message in messages])  # type: ignore[attr-defined, no-untyped-call]
