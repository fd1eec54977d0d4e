"""Producer throughput beside raw kombu publishing, measured in one run against one private Redis.

    .venv/bin/python -m bench.producers [--messages N]

Rows: raw kombu ``Producer.publish`` (one message at a time: the baseline), ktsync's Python API
(``Producer.enqueue_many``: contract validation + pipelined publishing), and a CSV file import
(``producers.imports``: CSV parsing + validation + pipelined publishing). Goal: both ≥ 0.5× raw.
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu import Connection
from kombu import Producer as KombuProducer

from ktsync.config.settings import Settings, load_settings
from ktsync.core.lanes import Lane
from ktsync.core.redis_server import ephemeral_redis
from ktsync.producers import Producer
from ktsync.producers.imports import CsvLayout, csv_messages, run_import

QUEUE = "bench-producers"


def message(i: int) -> dict[str, Any]:
    return {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": str(i),
            "email": f"c{i}@shop.example", "occurred_at": 1795341600 + i,
            "properties": {"firstname": "Bench", "lifecyclestage": "lead", "lists": ["Newsletter"]}}  # fmt: skip


def raw_kombu(url: str, n: int) -> float:
    with Connection(url) as connection:
        producer = KombuProducer(connection.default_channel)
        started = time.perf_counter()
        for i in range(n):
            producer.publish(message(i), routing_key=QUEUE, serializer="json")
        return n / (time.perf_counter() - started)


def python_api(settings: Settings, n: int) -> float:
    messages = [message(i) for i in range(n)]
    with Producer(settings) as producer:
        started = time.perf_counter()
        producer.enqueue_many(messages)
        return n / (time.perf_counter() - started)


def csv_import(settings: Settings, n: int) -> float:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "email", "firstname", "lifecyclestage", "lists"])
    writer.writerows([i, f"c{i}@shop.example", "Bench", "lead", "Newsletter"] for i in range(n))
    buffer.seek(0)
    layout = CsvLayout("hubspot", list_columns=frozenset({"lists"}))
    with Producer(settings) as producer:
        started = time.perf_counter()
        report = run_import(csv_messages(buffer, layout), producer)
        elapsed = time.perf_counter() - started
    assert report.enqueued == n, report
    return n / elapsed


@contextmanager
def bench_settings() -> Iterator[tuple[str, Settings]]:
    with ephemeral_redis() as store:
        yield store.url, load_settings({"KTSYNC_REDIS_URL": store.url})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    n = parser.parse_args().messages
    with bench_settings() as (url, settings):
        raw = raw_kombu(url, n)
        api = python_api(settings, n)
        imported = csv_import(settings, n)
        queued = redis.Redis.from_url(url).llen(settings.worker.lane_queue(Lane.LIVE))
    print(f"{n} messages each; private Redis; queued by ktsync: {queued}")
    print(f"  {'raw kombu Producer.publish':<44} {raw:>8.0f}/s")
    print(f"  {'ktsync Producer.enqueue_many (Python API)':<44} {api:>8.0f}/s   {api / raw:.2f}x raw")
    print(
        f"  {'ktsync CSV import (parse + validate + enqueue)':<44} {imported:>8.0f}/s   {imported / raw:.2f}x raw"
    )


if __name__ == "__main__":
    main()
