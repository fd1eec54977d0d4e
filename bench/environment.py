"""The benchmark's configuration: the default config on the bench's own queue and key prefix."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ktsync.config.settings import Settings
from ktsync.core.broker import sub_queues
from ktsync.core.redis_server import RedisHandle
from ktsync.local import fake_env, local_config

NAMESPACE = "ktsync-bench"


@contextmanager
def bench_config(store: RedisHandle, concurrency: int, *, namespace: str = NAMESPACE) -> Iterator[Path]:
    """The bench's own keys and queue; "no rate limit" for throughput runs (a budget never reached)."""
    rate = {"per_second": 10_000, "burst": 10_000, "max_in_flight": 0}
    broker_prefix = "" if store.owned else f"{namespace}:"
    with local_config(
        namespace, broker_prefix=broker_prefix, rate=rate, worker={"concurrency": concurrency}
    ) as path:
        yield path


def consumed_lists(settings: Settings) -> list[str]:
    """Every broker list the workers read: each consumed queue (the lanes, the pre-lane queue) and its
    priority lists."""
    return [
        settings.broker_prefix + name
        for queue in settings.worker.consumed_queues
        for name in sub_queues(queue)
    ]


def bench_env(base: Mapping[str, str], *, redis_url: str, base_url: str, config: Path) -> dict[str, str]:
    """Partner-key credentials for the fake (no login), on both the baselines and ktsync."""
    env = fake_env(base, redis_url=redis_url, base_url=base_url, config=config, partner=True)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, base.get("PYTHONPATH", "")) if p)
    return env
