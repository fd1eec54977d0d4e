"""Measure how many simple requests per second one keep-alive client gets from the fake KlickTipp.

Two clients: a ``requests.Session`` (what ktsync uses; the client itself is the limit near 2,000/s
here: an empty uvicorn app answers it at about 2,020/s) and the stdlib ``http.client`` (a light client
that shows what the server can do).

Run: ``.venv/bin/python -m bench.fake_server [--requests N] [--no-trust-env]``. ``--no-trust-env`` skips requests' per-call scan of proxy environment
variables, which costs the client more than the fake spends answering.
"""

from __future__ import annotations

import argparse
import http.client
import time
from urllib.parse import urlsplit

import requests

from fake_klicktipp.testing import partner_headers, running_fake


def measure(base_url: str, *, count: int, trust_env: bool) -> float:
    """Requests per second for ``count`` sequential ``GET /tag`` calls with partner headers."""
    session = requests.Session()
    session.trust_env = trust_env
    session.headers.update(partner_headers())
    for _ in range(200):  # warm up the connection and both interpreters
        session.get(f"{base_url}/tag", timeout=5)
    started = time.perf_counter()
    for _ in range(count):
        response = session.get(f"{base_url}/tag", timeout=5)
        assert response.status_code == 200
    return count / (time.perf_counter() - started)


def measure_http_client(base_url: str, *, count: int) -> float:
    """Requests per second for ``count`` sequential ``GET /tag`` calls on one keep-alive http.client."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
    headers = partner_headers()
    for _ in range(200):
        connection.request("GET", "/tag", headers=headers)
        connection.getresponse().read()
    started = time.perf_counter()
    for _ in range(count):
        connection.request("GET", "/tag", headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    connection.close()
    return count / (time.perf_counter() - started)


def main() -> None:
    """Start a fake, measure three rounds, print the best and the median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--no-trust-env", action="store_true")
    args = parser.parse_args()
    with running_fake() as fake:
        rounds = sorted(
            measure(fake.base_url, count=args.requests, trust_env=not args.no_trust_env) for _ in range(3)
        )
        light = sorted(measure_http_client(fake.base_url, count=args.requests) for _ in range(3))
    print(
        f"GET /tag, one keep-alive requests.Session, trust_env={not args.no_trust_env}: "
        f"median {rounds[1]:.0f} req/s, best {rounds[2]:.0f} req/s"
    )
    print(
        f"GET /tag, one keep-alive http.client connection: median {light[1]:.0f} req/s, best {light[2]:.0f} req/s"
    )


if __name__ == "__main__":
    main()
