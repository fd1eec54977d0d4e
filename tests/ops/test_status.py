"""`ktsync status`: the JSON scripts rely on (old keys kept), the new fields, workers online, the text view."""

from __future__ import annotations

import json
import time

import pytest
import redis
from celery import Celery

from ktsync.config.settings import Settings
from ktsync.core.lanes import Lane
from tests.ops.conftest import ktsync
from tests.ops.seed import seed

pytestmark = pytest.mark.slow  # every test runs `ktsync status` as a subprocess


def status(env: dict[str, str], *args: str) -> dict:
    result = ktsync("status", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_json_keeps_the_old_keys_and_adds_the_new_ones(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str]
) -> None:
    # Given known state in Redis
    seeded = seed(redis_client, settings, env)

    # When a script asks for the status (without pinging workers)
    report = status(env, "--ping-timeout", "0")
    asked_at = time.time()

    # Then the keys scripts already rely on are there, with the same meaning: "queue" is now every
    # queue together ("drained": nothing left anywhere)
    queue = report["queue"]
    assert (queue["queue"], queue["pending"], queue["in_flight"], queue["scheduled"]) == ("all", 2, 0, 0)
    assert queue["drained"] is False
    assert report["outcomes"] == {"synced": 3, "unchanged": 2, "dead_lettered": 3, "retried": 4, "parked": 2,
                                  "auth_alarm": 1}  # fmt: skip
    assert report["dead_letters"] == 3
    # And the new fields: per queue depth and age (live first), each lane, scheduled retries, dead letters
    # by reason, the limiter
    live, legacy, bulk = report["queues"]
    assert [live["queue"], legacy["queue"], bulk["queue"]] == list(settings.worker.consumed_queues)
    assert (live["pending"], legacy["pending"], bulk["pending"]) == (2, 0, 0)
    assert 0 <= queue["oldest_pending_age"] <= asked_at - seeded.enqueued_before
    assert queue["oldest_pending_age_source"] == live["oldest_pending_age_source"] == "enqueued_at"  # exact
    assert queue["parked"] == 2
    lanes = report["lanes"]
    assert (lanes["live"]["pending"], lanes["live"]["deferred"], lanes["bulk"]["pending"]) == (2, 0, 0)
    assert lanes["live"]["oldest_pending_age"] == live["oldest_pending_age"]
    assert lanes["live"]["budget_share"] is None  # no KlickTipp call in the last minute
    assert report["scheduled"]["eta"] == 0
    assert (report["scheduled"]["parked"], report["scheduled"]["parked_overdue"]) == (2, 1)
    assert report["scheduled"]["next_parked_due"] < asked_at
    assert report["dead_letters_by_reason"] == {"validation": 2, "auth": 1}
    assert {(g["reason"], g["code"], g["count"]) for g in report["dead_letter_groups"]} == {
        ("validation", 8, 2), ("auth", None, 1),
    }  # fmt: skip
    assert report["dead_letters_evicted"] == 1
    limiter = report["limiter"]
    assert limiter["account"] == seeded.account
    assert limiter["tokens"] == 0  # a 429's pause empties the bucket
    assert (limiter["burst"], limiter["rate"], limiter["in_flight"], limiter["max_in_flight"]) == (
        9,  # one token of the configured burst (10) is kept in reserve
        pytest.approx(0.0097),  # 97 % of the configured rate (0.01/s)
        1,
        4,
    )
    assert 0 < limiter["paused_for"] <= 300
    assert "warning" not in limiter  # KLICKTIPP_USERNAME is set
    assert report["auth_breaker_open"] is True
    assert report["workers"] is None  # not asked
    assert report["credentials_refused"][0]["error"] == "api.tag.index: HTTP 401"
    assert report["sessions"] == []  # no worker heartbeats here
    assert (report["stranded"], report["stranded_search_complete"]) == ([], True)  # no prefix mismatch
    assert report["recovery"] == {"reclaimed_tasks": 0, "orphaned_tasks": 0, "released_locks": 0,
                                  "released_slots": 0, "dead_workers": 0}  # fmt: skip


def test_an_empty_namespace_is_drained(redis_client: redis.Redis, env: dict[str, str]) -> None:
    # Given nothing in Redis, and (from a shell) no KLICKTIPP_USERNAME
    without_account = {k: v for k, v in env.items() if k != "KLICKTIPP_USERNAME"}

    report = status(without_account, "--ping-timeout", "0")

    assert report["queue"]["drained"] is True
    assert "KLICKTIPP_USERNAME is not set" in report["limiter"]["warning"]
    assert report["queue"]["oldest_pending_age"] == 0
    assert (report["outcomes"], report["dead_letters"], report["dead_letters_by_reason"]) == ({}, 0, {})


def test_status_lists_the_workers_that_answer_a_ping(celery_worker: Celery, env: dict[str, str]) -> None:
    # Given a running worker on the test's broker, When status pings with a generous timeout
    report = status(env, "--ping-timeout", "2")

    # Then the worker is listed by its node name
    workers = report["workers"]
    assert workers["count"] >= 1
    assert any(name.startswith("gen") for name in workers["online"]), workers
    assert "error" not in workers


def test_the_text_view_names_every_part(
    redis_client: redis.Redis, settings: Settings, env: dict[str, str]
) -> None:
    seed(redis_client, settings, env)

    result = ktsync("status", "--ping-timeout", "0.2", env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"queue {settings.worker.lane_queue(Lane.LIVE)}: pending 2 (oldest ")
    assert f"lane live ({settings.worker.lane_queue(Lane.LIVE)}): pending 2 (oldest " in result.stdout
    assert "lane bulk" in result.stdout
    assert "parked retries: 2" in result.stdout
    assert "workers online: 0 (none answered within 0.2s)" in result.stdout
    assert "dead letters: 3 (auth 1, validation 2), evicted 1" in result.stdout
    assert "PAUSED" in result.stdout
    assert "ALARM" in result.stdout
