"""The shared error table, FetchError as the worker sees it (retry decision, pickling), and id checks."""

from __future__ import annotations

import pickle
import random

import pytest

from ktsync.worker.crm import FetchError
from ktsync.worker.crm.http import error_for_status, record_id
from ktsync.worker.retry import Action, RetryPolicy, decide


@pytest.mark.parametrize(
    ("status", "retry_after", "retryable", "kept_retry_after"),
    [
        (429, 5.0, True, 5.0),
        (429, None, True, None),
        (408, None, True, None),
        (425, None, True, None),
        (500, None, True, None),
        (503, 20.0, True, 20.0),
        (401, None, False, None),
        (403, None, False, None),
        (400, 9.0, False, None),  # a Retry-After on a final answer changes nothing
        (302, None, False, None),
        (410, None, False, None),
    ],
)
def test_status_table(
    status: int, retry_after: float | None, retryable: bool, kept_retry_after: float | None
) -> None:
    error = error_for_status("hubspot", status, retry_after=retry_after, detail="", credential="X")
    assert (error.reason, error.retryable, error.retry_after, error.status) == (
        "crm_fetch", retryable, kept_retry_after, status,
    )  # fmt: skip


POLICY = RetryPolicy(max_attempts=8, min_backoff=1, max_backoff=600)


def test_the_worker_retries_a_rate_limit_after_the_crms_retry_after() -> None:
    error = error_for_status("close", 429, retry_after=12.0, detail="", credential="CLOSE_API_KEY")
    decision = decide(error, 1, POLICY, random.Random(1))
    assert (decision.action, decision.reason, decision.delay) == (Action.RETRY, "crm_fetch", 12.0)


def test_the_worker_backs_off_on_a_server_error_and_dead_letters_refused_credentials() -> None:
    server = decide(
        error_for_status("zoho", 502, retry_after=None, detail="", credential="Z"),
        2,
        POLICY,
        random.Random(1),
    )
    auth = decide(
        error_for_status("zoho", 401, retry_after=None, detail="", credential="Z"),
        1,
        POLICY,
        random.Random(1),
    )
    assert server.action is Action.RETRY
    assert 0 <= server.delay <= 2
    # reason crm_fetch, never "auth": that one would trip the KlickTipp credential breaker
    assert (auth.action, auth.reason) == (Action.DEAD_LETTER, "crm_fetch")


def test_a_fetch_error_survives_pickling_with_its_fields() -> None:
    error = FetchError("hubspot rate limit", retryable=True, retry_after=3.0, crm="hubspot", status=429)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (
        copy.to_dict()
        == error.to_dict()
        == {
            "type": "FetchError",
            "reason": "crm_fetch",
            "message": "hubspot rate limit",
            "retryable": True,
            "retry_after": 3.0,
            "crm": "hubspot",
            "status": 429,
        }
    )


@pytest.mark.parametrize("good", ["501", "cont_8Ks1yQa3Vn1Y", "lead_IIDH-x", "4876876000000624019"])
def test_record_ids_that_pass(good: str) -> None:
    assert record_id("close", good) == good


@pytest.mark.parametrize("bad", ["", "../lead/x", "a/b", "501?archived=true", "5 01", "a.b", "x" * 129])
def test_record_ids_that_could_walk_the_url_are_refused_for_good(bad: str) -> None:
    with pytest.raises(FetchError) as caught:
        record_id("hubspot", bad)
    assert caught.value.retryable is False
