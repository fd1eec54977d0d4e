"""Measure webhook requests/s: signed HubSpot batches over one keep-alive HTTP connection.

The receiver runs as its own process (``python -m ktsync.producers.webhooks``) against a private Redis, so
the client does not share its interpreter; every request is verified, mapped, deduplicated
(Lua claim + commit) and enqueued through the real Producer before the 200 comes back.

Run: ``.venv/bin/python -m ktsync.producers.webhooks.bench [--requests N] [--batch B] [--log-level L]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import redis

from ktsync.core.redis_server import ephemeral_redis

SECRET = "bench-client-secret"  # noqa: S105 - the benchmark's throw-away secret
READY = re.compile(rb"ktsync webhooks listening on http://([^:\s]+):(\d+)")
PATH = "/webhooks/hubspot"


@contextmanager
def receiver_process(redis_url: str, log_level: str) -> Iterator[tuple[str, int]]:
    """Start the receiver on a free port; yield (host, port)."""
    env = {**os.environ, "KTSYNC_REDIS_URL": redis_url, "HUBSPOT_CLIENT_SECRET": SECRET}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [sys.executable, "-m", "ktsync.producers.webhooks", "--port", "0", "--log-level", log_level]
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)  # noqa: S603 - our own module
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and process.poll() is None:
                out.seek(0)
                found = READY.search(out.read())
                if found:
                    yield found.group(1).decode(), int(found.group(2))
                    return
                time.sleep(0.05)
            err.seek(0)
            raise RuntimeError(f"the receiver did not start: {err.read().decode(errors='replace')}")
        finally:
            process.terminate()
            process.wait(timeout=10)


def signed_requests(
    host: str, port: int, *, total: int, batch: int, ids: Iterator[int]
) -> list[tuple[bytes, dict[str, str]]]:
    """``total`` HubSpot batches of ``batch`` contact events each, signed (v3) ahead of timing."""
    uri = f"http://{host}:{port}{PATH}"
    prepared = []
    for _ in range(total):
        now_ms = int(time.time() * 1000)
        events = [
            {
                "eventId": (event_id := next(ids)),
                "subscriptionId": 1,
                "portalId": 62515,
                "appId": 1,
                "occurredAt": now_ms,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": event_id,
                "propertyName": "lifecyclestage",
                "propertyValue": "lead",
                "changeSource": "CRM_UI",
            }
            for _ in range(batch)
        ]
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = str(now_ms)
        digest = hmac.new(
            SECRET.encode(), b"POST" + uri.encode() + body + stamp.encode(), hashlib.sha256
        ).digest()
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
            "X-HubSpot-Request-Timestamp": stamp,
        }
        prepared.append((body, headers))
    return prepared


def measure(connection: http.client.HTTPConnection, prepared: list[tuple[bytes, dict[str, str]]]) -> float:
    """Requests per second for the prepared requests, one after the other on one connection."""
    started = time.perf_counter()
    for body, headers in prepared:
        connection.request("POST", PATH, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"unexpected answer {response.status}")
    return len(prepared) / (time.perf_counter() - started)


def main() -> None:
    """Three rounds after a warm-up; print each, the best and the median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--batch", type=int, default=10, help="HubSpot events per request")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--log-level", default="warning", help="the receiver's log level (info: one line per request)"
    )
    args = parser.parse_args()
    ids = count(1)
    with ephemeral_redis() as handle, receiver_process(handle.url, args.log_level) as (host, port):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        measure(connection, signed_requests(host, port, total=200, batch=args.batch, ids=ids))  # warm-up
        rates = []
        for number in range(1, args.rounds + 1):
            rate = measure(
                connection, signed_requests(host, port, total=args.requests, batch=args.batch, ids=ids)
            )
            rates.append(rate)
            print(f"round {number}: {rate:,.0f} requests/s ({rate * args.batch:,.0f} events/s)")
        connection.close()
        queued = redis.Redis.from_url(handle.url).llen("ktsync")
    expected = (200 + args.rounds * args.requests) * args.batch
    print(
        f"signed HubSpot batches of {args.batch} events, one keep-alive connection: "
        f"best {max(rates):,.0f} requests/s, median {statistics.median(rates):,.0f} requests/s; "
        f"{queued:,} of {expected:,} events in the queue"
    )


if __name__ == "__main__":
    main()
