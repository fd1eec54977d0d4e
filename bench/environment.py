"""The benchmark's configuration: the default config on the bench's own queue and key prefix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

from config.settings import DEFAULT_CONFIG_PATH
from fake_klicktipp.testing import DEMO_CUSTOMER_KEY, DEMO_DEVELOPER_KEY, DEMO_USERNAME, SINGLE_OPT_IN_LIST_ID
from ktsync.redis_server import RedisHandle

NAMESPACE = "ktsync-bench"


@contextmanager
def bench_config(store: RedisHandle, concurrency: int) -> Iterator[Path]:
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["redis"].update(
        url=store.url, key_prefix=NAMESPACE, broker_prefix="" if store.owned else f"{NAMESPACE}:"
    )
    document["worker"].update(queue=NAMESPACE, concurrency=concurrency)
    document["sources"]["default"]["listid"] = SINGLE_OPT_IN_LIST_ID
    # "No rate limit" for throughput runs: the limiter still runs on every call (its cost is counted),
    # it just never makes a call wait.
    document["rate"] = {"per_second": 10_000, "burst": 10_000, "max_in_flight": 0}
    with tempfile.TemporaryDirectory(prefix="ktsync-bench-") as workdir:
        path = Path(workdir) / "ktsync.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        yield path


def bench_env(base: Mapping[str, str], *, redis_url: str, base_url: str, config: Path) -> dict[str, str]:
    """Partner-key credentials for the fake (no login), on both the baselines and ktsync."""
    env = {k: v for k, v in base.items() if not k.startswith("KLICKTIPP_")}
    env.update(
        KTSYNC_REDIS_URL=redis_url,
        KTSYNC_CONFIG=str(config),
        KLICKTIPP_BASE_URL=base_url,
        KLICKTIPP_USERNAME=DEMO_USERNAME,
        KLICKTIPP_DEVELOPER_KEY=DEMO_DEVELOPER_KEY,
        KLICKTIPP_CUSTOMER_KEY=DEMO_CUSTOMER_KEY,
        PYTHONPATH=os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[1]), base.get("PYTHONPATH", "")) if p
        ),
    )
    return env
