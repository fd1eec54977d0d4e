"""Measure what ktsync's broker transport costs against kombu's own Redis transport.

``ktsync.worker.transport`` changes only what happens when Redis goes away; on the way every message
takes it adds one ``try`` around recording the message as unacknowledged, and one look at the held
messages per channel opened. This measures the message path both ways, in one process on a private
Redis: publish ``--messages`` messages, then consume and acknowledge them all (one BRPOP each, as a
worker with one thread does), with kombu's transport and with ktsync's, in alternating rounds (a
busy moment of the machine hits both); prints the median messages/s of each and the ratio.

Run: ``.venv/bin/python -m bench.transport [--messages N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

from ktsync.core.redis_server import ephemeral_redis
from ktsync.worker.transport import Transport

QUEUE = Queue("bench-transport", Exchange("bench-transport"), routing_key="bench-transport")
BODY = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": "1", "email": "a@b.example"}


def publish(url: str, transport: type, count: int) -> float:
    """Messages/s published."""
    with Connection(url, transport=transport) as connection, Producer(connection.default_channel) as producer:
        started = time.perf_counter()
        for _ in range(count):
            producer.publish(BODY, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])
        return count / (time.perf_counter() - started)


def consume(url: str, transport: type, count: int) -> float:
    """Messages/s taken (BRPOP), recorded as unacknowledged, handed over and acknowledged."""
    done = 0

    def ack(_body: Any, message: Any) -> None:
        nonlocal done
        message.ack()
        done += 1

    with Connection(url, transport=transport) as connection:
        consumer = Consumer(connection.default_channel, [QUEUE], callbacks=[ack], prefetch_count=1)
        consumer.consume()
        started = time.perf_counter()
        while done < count:
            connection.drain_events(timeout=5)
        return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    kinds = {"kombu": kombu_redis.Transport, "ktsync": Transport}
    published: dict[str, list[float]] = {name: [] for name in kinds}
    consumed: dict[str, list[float]] = {name: [] for name in kinds}
    with ephemeral_redis() as store:
        for _ in range(args.rounds):
            for name, transport in kinds.items():
                published[name].append(publish(store.url, transport, args.messages))
                consumed[name].append(consume(store.url, transport, args.messages))
    print(f"bench.transport: {args.messages} messages, {args.rounds} rounds, medians (messages/s)")
    for label, figures in (("publish", published), ("consume + ack", consumed)):
        kombu, ktsync = (statistics.median(figures[name]) for name in kinds)
        print(
            f"  {label:<14} kombu {kombu:8,.0f}   ktsync {ktsync:8,.0f}   ktsync/kombu {ktsync / kombu:.2f}x"
        )


if __name__ == "__main__":
    main()
