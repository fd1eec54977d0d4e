"""The workers ``bench.rate`` starts: ktsync's own, timed at the limiter gate, and a plain Celery baseline.

    python -m bench.rate_workers [ktsync worker options]   # `ktsync worker`, every gate wait recorded
    celery -A bench.rate_workers worker ...                 # one POST /subscriber per task, Celery rate_limit

The ktsync worker is the real one (``ktsync.cli``); only ``ktsync.worker.runtime.limiter_gate`` is wrapped so
that each KlickTipp call records how long its worker slot waited for the limiter before the call went
out (or before the task gave up with ``Throttled`` and was requeued). The limiter's decisions are
untouched. Records go to Redis under ``{key_prefix}:bench:gate``: a hash ``granted``/``throttled`` and
a list ``:waits`` of seconds.

The baseline task's ``rate_limit`` comes from ``BENCH_TASK_RATE_LIMIT`` (e.g. ``5/s``): Celery keeps
that budget per worker process, not per account.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
import requests
from celery import Celery

from fake_klicktipp.testing import SINGLE_OPT_IN_LIST_ID, partner_headers
from ktsync.config.celery import celery_config
from ktsync.config.settings import load_settings
from ktsync.worker.ratelimit import Throttled, limiter_gate

Gate = Callable[[str], contextlib.AbstractContextManager[object]]
ONE_HTTP_TASK = "bench.rate_one_http"

settings = load_settings()
app = Celery("bench-rate", set_as_current=False)
app.conf.update(celery_config(settings))
_local = threading.local()


def gate_key(key_prefix: str) -> str:
    return f"{key_prefix}:bench:gate"


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers.update(partner_headers())
        _local.session = session
    return session


@app.task(name=ONE_HTTP_TASK, shared=False, rate_limit=os.environ.get("BENCH_TASK_RATE_LIMIT") or None)  # type: ignore[untyped-decorator]
def one_http(email: str) -> None:
    """One add-or-update call for a new contact, straight over requests; a 429 fails the task."""
    response = _session().post(
        f"{os.environ['KLICKTIPP_BASE_URL']}/subscriber",
        json={"email": email, "listid": SINGLE_OPT_IN_LIST_ID},
        timeout=10,
    )
    response.raise_for_status()


def timed_limiter_gate(store: redis.Redis, key: str) -> Callable[..., Gate]:
    """``limiter_gate`` with the same arguments, recording each call's wait for the limiter."""

    def record(started: float, outcome: str) -> None:
        pipe = store.pipeline(transaction=False)
        pipe.hincrby(key, outcome, 1)
        pipe.rpush(f"{key}:waits", f"{time.perf_counter() - started:.6f}")
        pipe.execute()

    def factory(*args: Any, **kwargs: Any) -> Gate:
        gate = limiter_gate(*args, **kwargs)

        @contextlib.contextmanager
        def timed(operation: str) -> Iterator[object]:
            started = time.perf_counter()
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(gate(operation))
                except Throttled:
                    record(started, "throttled")
                    raise
                record(started, "granted")
                yield None

        return timed

    return factory


def main() -> None:
    import ktsync.worker.runtime
    from ktsync.cli import main as ktsync_main

    store = redis.Redis.from_url(settings.redis_url)
    ktsync.worker.runtime.limiter_gate = timed_limiter_gate(store, gate_key(settings.key_prefix))  # type: ignore[attr-defined]
    ktsync_main(args=["worker", *sys.argv[1:]], prog_name="ktsync")


if __name__ == "__main__":
    main()
