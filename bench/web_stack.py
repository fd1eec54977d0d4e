"""Measure the web stack: the fake KlickTipp's calls/s, and what Starlette costs over raw ASGI.

Parts 1 and 2 are driven by keep-alive ``requests.Session`` clients (``trust_env`` off: its per-call
proxy scan costs the client more than the servers spend) from 1 and from several threads:

1. the fake KlickTipp (it carries every benchmark): log in once per client, then ``POST
   /subscriber/search`` for the seed's existing contact;
2. two servers answering the same fixed JSON to ``POST /subscriber/search``, each in a process of
   its own, served alike by ``ktsync.core.web.serve``: a minimal raw-ASGI app (the plumbing the
   services had before) and a Starlette app with one catch-all route (the plumbing they have now),
   and the ratio Starlette / raw (rounds interleaved, so a busy moment of the machine hits both);
3. in process, without sockets or client: microseconds per request of the raw app, the Starlette
   app and the fake's ``FakeApp`` (partner headers), each called straight as ASGI.

Each figure is the median of ``--rounds`` rounds (in process also the best: on a busy machine the
least disturbed round is the truest).

Run: ``.venv/bin/python -m bench.web_stack [--calls N] [--threads 1,4]``. Both servers of part 2
also run on their own: ``python -m bench.web_stack --serve raw|starlette``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any, Final

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from fake_klicktipp.app import FakeApp
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.options import DEFAULT_PROFILE
from fake_klicktipp.seed import read_seed
from fake_klicktipp.testing import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    EXISTING_EMAIL,
    partner_headers,
    running_fake,
)
from ktsync.core.web import catch_all, json_response, read_body, serve

FIXED: Final = [1000001]  # what the fake answers a search for the seed's existing contact
PATH: Final = "/subscriber/search"
READY_LINE: Final = "bench-web-stack listening on http://{host}:{port}"
_READY: Final = re.compile(rb"bench-web-stack listening on http://([^:\s]+):(\d+)")
Setup = Callable[[requests.Session, str], None]

# --- the two servers of part 2 --------------------------------------------------------------------


async def raw_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """The fixed answer, in raw ASGI: read the body, write JSON (no lifespan: served with it off)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message["type"] == "http.request" and message.get("more_body", False)
    payload = b"[1000001]"
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _fixed(request: Request) -> Response:
    await read_body(request)
    return json_response(200, FIXED)


def starlette_app() -> Starlette:
    """The fixed answer, the way the services answer now: one catch-all route, ``json_response``."""
    return Starlette(routes=[catch_all("/{path:path}", _fixed)])


def serve_baseline(kind: str) -> None:
    """Serve the raw or the Starlette app on a free loopback port until interrupted."""
    app = raw_app if kind == "raw" else starlette_app()
    if not serve(app, host="127.0.0.1", port=0, ready_line=READY_LINE):
        sys.exit("bench.web_stack could not listen")


def _read(stream: IO[bytes]) -> bytes:
    fd = stream.fileno()  # pread: the child writes through the same file offset
    return os.pread(fd, os.fstat(fd).st_size, 0)


@contextmanager
def spawned(kind: str) -> Iterator[str]:
    """``python -m bench.web_stack --serve kind`` in a subprocess; yields its base URL."""
    command = [sys.executable, "-m", "bench.web_stack", "--serve", kind]
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(command, stdout=stdout)
        try:
            deadline = time.monotonic() + 10
            while (found := _READY.search(_read(stdout))) is None:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start")
                time.sleep(0.02)
            yield f"http://{found.group(1).decode()}:{found.group(2).decode()}"
        finally:
            process.terminate()
            process.wait(timeout=10)


# --- the client -----------------------------------------------------------------------------------


def _no_setup(session: requests.Session, base_url: str) -> None:
    """Nothing to do before the calls."""


def _login(session: requests.Session, base_url: str) -> None:
    answer = session.post(
        f"{base_url}/account/login", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD}, timeout=5
    )
    answer.raise_for_status()  # the session cookie is now in the session


def _client(base_url: str, calls: int, setup: Setup, start: threading.Barrier) -> None:
    with requests.Session() as session:
        session.trust_env = False
        setup(session, base_url)
        body = {"email": EXISTING_EMAIL}
        for _ in range(50):  # warm the connection up
            session.post(f"{base_url}{PATH}", json=body, timeout=5)
        start.wait()
        for _ in range(calls):
            answer = session.post(f"{base_url}{PATH}", json=body, timeout=5)
            if answer.status_code != 200:
                raise RuntimeError(f"{PATH} answered {answer.status_code}: {answer.text[:200]}")


def calls_per_second(base_url: str, *, calls: int, threads: int, setup: Setup = _no_setup) -> float:
    """``calls`` requests split over ``threads`` keep-alive clients; requests per second of wall time."""
    start = threading.Barrier(threads + 1)
    each = calls // threads
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(_client, base_url, each, setup, start) for _ in range(threads)]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - began
    return each * threads / elapsed


# --- in process: the server's own cost, without the network and the client ----------------------


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }


async def _drive(app: Any, headers: list[tuple[bytes, bytes]], calls: int) -> float:
    body = json.dumps({"email": EXISTING_EMAIL}).encode()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    template = _scope(headers)
    began = time.perf_counter()
    for _ in range(calls):
        await app(dict(template), receive, send)
    elapsed = time.perf_counter() - began
    if set(statuses) != {200}:
        raise RuntimeError(f"in-process answers: {sorted(set(statuses))}")
    return elapsed / calls * 1e6


def microseconds_per_call(calls: int) -> dict[str, float]:
    """Microseconds per request of each app called straight as ASGI (one event loop, no sockets)."""
    fake = FakeApp(FakeKlickTipp(read_seed(None), DEFAULT_PROFILE))
    partner = [(k.lower().encode(), v.encode()) for k, v in partner_headers().items()]
    plain = [(b"content-type", b"application/json")]
    apps = {"raw ASGI": (raw_app, plain), "Starlette": (starlette_app(), plain)}
    apps["fake KlickTipp"] = (fake, [*plain, *partner])
    return {label: asyncio.run(_drive(app, headers, calls)) for label, (app, headers) in apps.items()}


# --- the report -----------------------------------------------------------------------------------


def _row(label: str, figures: Mapping[int, float]) -> str:
    return f"{label:<38}" + "".join(f"{figures[n]:>10.0f}" for n in sorted(figures))


def _median_over(rounds: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(rounds))


def main(argv: list[str] | None = None) -> None:
    """Measure all three parts; print calls/s per client thread count (medians of interleaved rounds),
    microseconds per request in process, and Starlette's ratio to raw ASGI."""
    parser = argparse.ArgumentParser(prog="python -m bench.web_stack", description=__doc__)
    parser.add_argument("--calls", type=int, default=5000, help="calls per measurement (default 5000)")
    parser.add_argument("--threads", default="1,4", help="client thread counts (default 1,4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure, median kept (default 3)")
    parser.add_argument("--serve", choices=("raw", "starlette"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_baseline(args.serve)
        return
    counts = [int(n) for n in args.threads.split(",")]
    with running_fake() as fake:
        fake_figures = {
            n: _median_over(
                args.rounds,
                lambda n=n: calls_per_second(fake.base_url, calls=args.calls, threads=n, setup=_login),
            )
            for n in counts
        }
    rounds: dict[tuple[str, int], list[float]] = {}
    with spawned("raw") as raw_url, spawned("starlette") as starlette_url:
        for _ in range(args.rounds):  # interleaved: a busy moment of the machine hits both alike
            for kind, url in (("raw", raw_url), ("starlette", starlette_url)):
                for n in counts:
                    rounds.setdefault((kind, n), []).append(
                        calls_per_second(url, calls=args.calls, threads=n)
                    )
    wire = {kind: {n: statistics.median(rounds[kind, n]) for n in counts} for kind in ("raw", "starlette")}
    local = {label: [] for label in ("raw ASGI", "Starlette", "fake KlickTipp")}
    for _ in range(args.rounds):
        for label, micros in microseconds_per_call(args.calls).items():
            local[label].append(micros)
    print(f"POST {PATH}, {args.calls} calls a round, median of {args.rounds}, keep-alive requests.Session")
    print(f"{'calls/s with client threads':<38}" + "".join(f"{n:>10}" for n in counts))
    print(_row("fake KlickTipp (login once per client)", fake_figures))
    print(_row("fixed JSON, raw ASGI", wire["raw"]))
    print(_row("fixed JSON, Starlette", wire["starlette"]))
    ratio = {n: wire["starlette"][n] / wire["raw"][n] for n in counts}
    print(f"{'Starlette / raw ASGI':<38}" + "".join(f"{ratio[n]:>10.2f}" for n in counts))
    print("in process (ASGI called directly, no sockets), microseconds per request: median, best")
    for label, figures in local.items():
        print(f"  {label:<36}{statistics.median(figures):>10.1f}{min(figures):>10.1f}")


if __name__ == "__main__":
    main()
