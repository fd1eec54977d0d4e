"""Baseline Celery tasks with ktsync's Celery settings: a no-op, and one raw HTTP call to the fake.

Run by ``bench/run.py`` as ``celery -A bench.baseline_app worker ...``; configured by the same
``KTSYNC_CONFIG`` file as the ktsync worker it is compared with.
"""

from __future__ import annotations

import os
import threading

import requests
from celery import Celery

from fake_klicktipp.testing import SINGLE_OPT_IN_LIST_ID, partner_headers
from ktsync.config.celery import celery_config
from ktsync.config.settings import load_settings

settings = load_settings()
app = Celery("bench", set_as_current=True)
app.conf.update(celery_config(settings))
_local = threading.local()
_BASE_URL = os.environ.get("KLICKTIPP_BASE_URL", "")


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers.update(partner_headers())
        _local.session = session
    return session


@app.task(name="bench.noop", shared=False)
def noop(i: int) -> None:
    """Nothing at all: Celery's own cost per task."""


@app.task(name="bench.one_http", shared=False)
def one_http(i: int) -> None:
    """One add-or-update call for a new contact, straight over requests."""
    response = _session().post(
        f"{_BASE_URL}/subscriber",
        json={"email": f"baseline-{i}@bench.example", "listid": SINGLE_OPT_IN_LIST_ID},
        timeout=10,
    )
    response.raise_for_status()
