"""ktsync's broker transport against a Redis that goes away under a consumer waiting in BRPOP.

Each failure is reproduced step by step on a real redis-server of the test's own, stopped at the
moment that matters, first with kombu's transport (where it happens: when kombu fixes it, that test
fails and the repair can go) and then with ktsync's (where it does not).

* A message BRPOP took just before Redis went away: kombu loses it (it is neither in its queue nor in
  the unacked hash when Redis is back); ktsync holds it and puts it back when Redis is back.
* Celery's clean-up after a lost connection (``Consumer.on_connection_error_after_connected``: collect
  the connection, then close it): kombu's close raises ``AttributeError`` (``'NoneType' object has no
  attribute 'hostname'``), which ends the worker; ktsync's closes, and the message delivered before
  stays in the unacked hash for crash recovery.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Message, Producer, Queue
from kombu.transport import redis as kombu_redis

from ktsync.config.celery import BROKER_TRANSPORTS, broker_transport
from ktsync.worker.transport import HELD, Transport
from tests.integration.fault_helpers import OwnedRedis

pytestmark = pytest.mark.integration

QUEUE = Queue("ktsync-transport-test", Exchange("ktsync-transport-test"), routing_key="ktsync-transport-test")
# An auto-delete fanout binding, as Celery's pidbox (remote control) has one on the consumer's channel
BROADCAST = Queue(
    "ktsync-transport-test.pidbox", Exchange("ktsync-transport-test.pidbox", type="fanout"), auto_delete=True
)
KOMBU, KTSYNC = kombu_redis.Transport, Transport


def publish(server: OwnedRedis, transport: type, body: dict[str, Any]) -> None:
    with (
        Connection(server.url, transport=transport) as connection,
        Producer(connection.default_channel) as producer,
    ):
        producer.publish(body, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])


def consuming(server: OwnedRedis, transport: type, taken: list[Message]) -> Connection:
    """A connection consuming the queue and the broadcast queue as a Celery worker's consumer does,
    waiting in BRPOP for the next message."""
    connection = Connection(server.url, transport=transport)
    Consumer(connection.default_channel, [QUEUE, BROADCAST],
             callbacks=[lambda _body, message: taken.append(message)]).consume()  # fmt: skip
    with contextlib.suppress(TimeoutError):
        connection.drain_events(timeout=0.2)  # takes what is waiting, and registers the BRPOP
    connection.default_channel._brpop_start()  # what the worker's event loop does next
    assert connection.default_channel._in_poll
    return connection


def what_redis_has(server: OwnedRedis) -> dict[str, list[Any]]:
    """The bodies in the queue and in the unacked hash."""
    client = redis.Redis.from_url(server.url)
    try:
        queued = [json.loads(raw) for raw in client.lrange(QUEUE.name, 0, -1)]
        unacked = [json.loads(raw)[0] for raw in client.hvals("unacked")]
        return {name: [json.loads(base64.b64decode(payload["body"])) for payload in payloads]
                for name, payloads in (("queued", queued), ("unacked", unacked))}  # fmt: skip
    finally:
        client.close()


@pytest.fixture
def taken_as_redis_goes(owned_server: OwnedRedis, request: pytest.FixtureRequest) -> Iterator[list[Message]]:
    """BRPOP answered with a message, and Redis went away before the consumer read that answer."""
    transport, taken = request.param, list[Message]()
    connection = consuming(owned_server, transport, taken)
    publish(owned_server, transport, {"n": 1})
    time.sleep(0.3)  # Redis has popped the message for the waiting BRPOP and sent it
    owned_server.stop()
    with pytest.raises(redis.ConnectionError):
        connection.default_channel._brpop_read()  # reads the message, cannot record it as unacked
    try:
        yield taken
    finally:
        connection.release()
        HELD.take()  # nothing held is left for another test's Redis


@pytest.mark.parametrize("taken_as_redis_goes", [KOMBU], indirect=True)
def test_kombus_transport_loses_a_message_taken_just_before_redis_went_away(
    taken_as_redis_goes: list[Message], owned_server: OwnedRedis
) -> None:
    owned_server.start()
    publish(owned_server, KOMBU, {"n": 2})

    assert taken_as_redis_goes == []
    assert what_redis_has(owned_server) == {"queued": [{"n": 2}], "unacked": []}


@pytest.mark.parametrize("taken_as_redis_goes", [KTSYNC], indirect=True)
def test_ktsyncs_transport_puts_that_message_back_at_the_head_of_its_queue_when_redis_is_back(
    taken_as_redis_goes: list[Message], owned_server: OwnedRedis
) -> None:
    # When Redis is back, and a channel (the worker's reconnect, or any producer's) reaches it
    owned_server.start()
    publish(owned_server, KTSYNC, {"n": 2})

    # Then the message is back in its queue, ahead of what came after it (BRPOP takes from the end)
    assert taken_as_redis_goes == []
    assert what_redis_has(owned_server) == {"queued": [{"n": 2}, {"n": 1}], "unacked": []}


@pytest.fixture
def waiting(owned_server: OwnedRedis, request: pytest.FixtureRequest) -> Connection:
    """A consumer that took one message (not acknowledged yet) and waits in BRPOP; Redis is gone."""
    transport, taken = request.param, list[Message]()
    publish(owned_server, transport, {"n": 1})
    connection = consuming(owned_server, transport, taken)
    assert len(taken) == 1
    owned_server.stop()
    connection.collect(socket_timeout=1)  # Celery's first step after a lost connection
    return connection


@pytest.mark.parametrize("waiting", [KOMBU], indirect=True)
def test_kombus_transport_fails_in_celerys_clean_up_after_a_lost_connection(waiting: Connection) -> None:
    with pytest.raises(AttributeError, match="hostname"):
        waiting.close()


@pytest.mark.parametrize("waiting", [KTSYNC], indirect=True)
def test_ktsyncs_transport_closes_and_leaves_the_unacked_message_for_crash_recovery(
    waiting: Connection, owned_server: OwnedRedis
) -> None:
    waiting.close()

    owned_server.start()
    assert what_redis_has(owned_server) == {"queued": [], "unacked": [{"n": 1}]}


def test_workers_and_producers_use_ktsyncs_transport_which_connections_still_call_redis() -> None:
    from ktsync.worker.celery_app import app

    assert app.conf.broker_transport == BROKER_TRANSPORTS["redis"]
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        # what the worker logs ("Connected to redis://...") and what Flower's broker view connects by
        assert connection.as_uri().startswith("redis://")


@pytest.mark.parametrize(
    ("url", "transport", "scheme"),
    [("redis://127.0.0.1:6390/0", BROKER_TRANSPORTS["redis"], "redis://"),
     ("rediss://127.0.0.1:6390/0?ssl_cert_reqs=required", BROKER_TRANSPORTS["rediss"], "rediss://"),
     ("redis+socket:///run/redis.sock", None, "redis+socket://")],
)  # fmt: skip
def test_the_transport_follows_the_broker_urls_scheme(url: str, transport: str | None, scheme: str) -> None:
    assert broker_transport(url) == transport
    assert Connection(url, transport=transport).as_uri().startswith(scheme)
