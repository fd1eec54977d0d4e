"""JSON logs: the formatter alone, then a real `ktsync worker` whose every output line is one JSON object."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from fake_klicktipp.testing import DEMO_PASSWORD, DEMO_USERNAME, RunningFake, running_fake
from ktsync.config.settings import Settings
from ktsync.logs import (
    LOG_FORMAT_ENV,
    REDACTED,
    JsonFormatter,
    LogFormatError,
    configure_logging,
    resolve_format,
)
from ktsync.producers import Producer
from ktsync.worker.stats import RedisStats
from tests.ops.conftest import Service
from tests.ops.seed import upsert


def record(
    level: int = logging.INFO, msg: str = "hello %s", args: Any = ("world",), **extra: Any
) -> logging.LogRecord:
    rec = logging.LogRecord("ktsync.worker.tasks", level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def as_json(rec: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_a_line_carries_time_level_logger_message_and_the_extras() -> None:
    entry = as_json(record(source="hubspot", crm_contact_id="501", attempt=2))

    assert entry["level"] == "INFO"
    assert entry["logger"] == "ktsync.worker.tasks"
    assert entry["message"] == "hello world"
    assert entry["time"].endswith("+00:00")
    assert (entry["source"], entry["crm_contact_id"], entry["attempt"]) == ("hubspot", "501", 2)


def test_secrets_are_redacted_and_addresses_shortened_below_warning() -> None:
    entry = as_json(record(msg="synced %s", args=("alex@shop.example",), password="hunter2",
                           access_token="tok", developer_key="k", email="alex@shop.example"))  # fmt: skip

    assert entry["message"] == "synced a***@shop.example"
    assert entry["email"] == "a***@shop.example"
    assert entry["password"] == entry["access_token"] == entry["developer_key"] == REDACTED
    # A warning is where an operator must act: the address stays whole there
    warning = as_json(record(logging.WARNING, msg="conflict %s", args=("alex@shop.example",)))
    assert warning["message"] == "conflict alex@shop.example"


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record(logging.ERROR)
        rec.exc_info = sys.exc_info()

    entry = as_json(rec)
    assert "ValueError: boom" in entry["exc_info"]


def test_the_format_comes_from_the_option_then_the_environment() -> None:
    assert resolve_format(None, {}) == "text"
    assert resolve_format(None, {LOG_FORMAT_ENV: "JSON"}) == "json"
    assert resolve_format("text", {LOG_FORMAT_ENV: "json"}) == "text"
    with pytest.raises(LogFormatError, match=LOG_FORMAT_ENV):
        resolve_format(None, {LOG_FORMAT_ENV: "xml"})


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configuring_twice_keeps_one_handler(root_logger: logging.Logger) -> None:
    configure_logging("json", "DEBUG")
    configure_logging("json", "WARNING")

    ours = [h for h in root_logger.handlers if h.get_name() == "ktsync"]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, JsonFormatter)
    assert root_logger.level == logging.WARNING


# -- a real worker ---------------------------------------------------------------------------------


@pytest.fixture
def rate_config() -> dict[str, Any]:
    return {"per_second": 1000, "burst": 1000, "max_in_flight": 0}


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with running_fake() as running:
        yield running


@pytest.mark.slow
def test_the_worker_logs_one_json_object_per_line(
    fake: RunningFake, redis_client: redis.Redis, settings: Settings, service: Callable[..., Service]
) -> None:
    # Given a worker started with KTSYNC_LOG_FORMAT=json against the fake KlickTipp
    worker = service("worker", "--concurrency", "2", extra_env={
        LOG_FORMAT_ENV: "json", "KLICKTIPP_BASE_URL": fake.base_url,
        "KLICKTIPP_USERNAME": DEMO_USERNAME, "KLICKTIPP_PASSWORD": DEMO_PASSWORD,
    })  # fmt: skip
    worker.wait_for(r'"message": "[^"]*ready\.?"')

    # When it syncs one contact
    with Producer(settings) as producer:
        producer.enqueue(upsert("crm-json-1", "json.logs@shop.example"))
    stats = RedisStats(redis_client, settings.key_prefix)
    deadline = time.monotonic() + 30
    while stats.snapshot().get("synced", 0) < 1:
        assert time.monotonic() < deadline, worker.text()
        time.sleep(0.1)
    assert worker.stop() == 0

    # Then every log line (stderr), Celery's own included, is a JSON object with the four fields.
    # (stdout only carries what Celery prints from signal handlers, where logging is not safe.)
    lines = worker.stderr_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    # And the outcome line says which task, which contact, what happened, inside the task's context
    outcome = next(
        e for e in entries if e["logger"] == "ktsync.worker.tasks" and "outcome=synced" in e["message"]
    )
    assert "crm_contact_id=crm-json-1" in outcome["message"]
    assert outcome["task_name"] == "ktsync.sync_contact"
    assert outcome["task_id"] in outcome["message"]
    # And no full address at INFO
    assert not [e for e in entries if e["level"] == "INFO" and "json.logs@shop.example" in json.dumps(e)]
