"""Other services import ktsync under one name: their own ``config``/``worker``/``producers`` stay theirs.

The throwaway service below has cookiecutter-django's layout (a ``config`` package with ``settings``) and
packages named ``worker`` and ``producers`` of its own; from its directory it enqueues through ktsync's
Python API, and both its packages and ktsync's work.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane

SERVICE = """
import config.settings, worker, producers
from ktsync.config import load_settings
from ktsync.producers import Producer

settings = load_settings()
with Producer(settings) as producer:
    producer.enqueue({"v": 1, "type": "contact.upsert", "source": "default", "crm_contact_id": "svc-1",
                      "email": "svc@example.com", "occurred_at": "2026-12-01T10:00:00Z"})
print(config.settings.NAME, worker.NAME, producers.NAME)
"""


def _package(root: Path, name: str, files: dict[str, str]) -> None:
    (root / name).mkdir(parents=True)
    for file, text in files.items():
        (root / name / file).write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_a_service_with_its_own_config_package_enqueues_through_the_python_api(
    tmp_path: Path, env: dict[str, str], settings: Settings, redis_client: redis.Redis
) -> None:
    service = tmp_path / "service"
    _package(service, "config", {"__init__.py": "", "settings.py": "NAME = 'its-config'\n"})
    _package(service, "worker", {"__init__.py": "NAME = 'its-worker'\n"})
    _package(service, "producers", {"__init__.py": "NAME = 'its-producers'\n"})
    (service / "enqueue.py").write_text(textwrap.dedent(SERVICE), encoding="utf-8")

    result = subprocess.run([sys.executable, "enqueue.py"], cwd=service, env=env, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["its-config", "its-worker", "its-producers"]
    queue = settings.broker_prefix + settings.worker.lane_queue(Lane.LIVE)
    assert redis_client.llen(queue) == 1


@pytest.mark.parametrize("old", ["worker", "producers", "config"])
def test_the_old_top_level_names_say_which_name_to_use(old: str) -> None:
    checkout = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", f"import {old}"], cwd=checkout, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert f"import ktsync.{old}, not {old}" in result.stderr


def test_the_distribution_installs_one_top_level_package_for_other_services() -> None:
    """What ``pip install ktsync`` puts on sys.path: ktsync and the two fakes, never worker/config/producers."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    import tomllib

    from setuptools.discovery import PackageFinder

    find = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    packages = PackageFinder.find(str(pyproject.parent), include=find["include"])
    top_level = {name.split(".")[0] for name in packages}
    assert top_level == {"ktsync", "fake_klicktipp", "fake_crm"}
    assert {"ktsync.worker", "ktsync.producers", "ktsync.config", "ktsync.worker.klicktipp"} <= set(packages)
