"""Running ktsync locally against the fake KlickTipp: a config file and an environment for it.

Shared by `ktsync demo` and the benchmarks, so they configure workers the same way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from fake_klicktipp.testing import (
    DEMO_CUSTOMER_KEY,
    DEMO_DEVELOPER_KEY,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    SINGLE_OPT_IN_LIST_ID,
)
from ktsync.config.settings import DEFAULT_CONFIG_PATH


@contextmanager
def local_config(namespace: str, *, broker_prefix: str = "", **sections: Mapping[str, Any]) -> Iterator[Path]:
    """The default config in a temporary file: the fake's single-opt-in process, keys and queue under
    ``namespace``, and ``sections`` (e.g. ``rate={...}``) merged over the defaults."""
    document = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["redis"].update(key_prefix=namespace, broker_prefix=broker_prefix)
    document["worker"]["queue"] = namespace
    document["sources"]["default"]["listid"] = SINGLE_OPT_IN_LIST_ID
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    with tempfile.TemporaryDirectory(prefix=f"{namespace}-") as workdir:
        path = Path(workdir) / "ktsync.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        yield path


def fake_env(
    base: Mapping[str, str], *, redis_url: str, base_url: str, config: Path, partner: bool = False
) -> dict[str, str]:
    """``base`` without any real KlickTipp credentials, pointed at the fake with its demo account
    (session login, or partner keys: no login call at all)."""
    env = {k: v for k, v in base.items() if not k.startswith("KLICKTIPP_")}
    env.update(KTSYNC_REDIS_URL=redis_url, KTSYNC_CONFIG=str(config), KLICKTIPP_BASE_URL=base_url,
               KLICKTIPP_USERNAME=DEMO_USERNAME)  # fmt: skip
    if partner:
        env.update(KLICKTIPP_DEVELOPER_KEY=DEMO_DEVELOPER_KEY, KLICKTIPP_CUSTOMER_KEY=DEMO_CUSTOMER_KEY)
    else:
        env.update(KLICKTIPP_PASSWORD=DEMO_PASSWORD)
    return env
