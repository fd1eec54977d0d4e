"""Token bucket and fault settings (pure parts)."""

from __future__ import annotations

import pytest

from fake_klicktipp.faults import FaultInjector, Faults, RateLimit, faults_json, take_token, updated_faults


def test_a_fresh_bucket_allows_a_burst_then_asks_to_wait():
    limit = RateLimit(per_second=2.0, burst=3)
    bucket = None
    for _ in range(3):
        bucket, retry_after = take_token(bucket, limit, now=10.0)
        assert retry_after is None
    bucket, retry_after = take_token(bucket, limit, now=10.0)
    assert retry_after == 1


def test_tokens_refill_with_time():
    limit = RateLimit(per_second=2.0, burst=1)
    bucket, _ = take_token(None, limit, now=0.0)
    _, retry_after = take_token(bucket, limit, now=0.25)
    assert retry_after == 1
    _, retry_after = take_token(bucket, limit, now=0.5)
    assert retry_after is None


def test_retry_after_is_whole_seconds_and_at_least_one():
    limit = RateLimit(per_second=0.1, burst=1)
    bucket, _ = take_token(None, limit, now=0.0)
    _, retry_after = take_token(bucket, limit, now=0.0)
    assert retry_after == 10


def test_partial_updates_keep_other_settings():
    faults = updated_faults(Faults(), {"error_rate": 0.5}, now=0.0)
    faults = updated_faults(
        faults, {"rate_limit": {"per_second": 5, "burst": 2}, "outage_seconds": 30}, now=100.0
    )
    assert faults.error_rate == 0.5
    assert faults.rate_limit == RateLimit(5.0, 2)
    assert faults.outage_until == 130.0
    assert faults_json(faults, now=110.0)["outage_seconds"] == 20.0


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 2},
        {"rate_limit": {"per_second": 0}},
        {"rate_limit": 5},
        {"bogus": 1},
        {"error_status": 200},
    ],
)
def test_bad_settings_are_refused(changes):
    with pytest.raises(ValueError, match=r"."):
        updated_faults(Faults(), changes, now=0.0)


def test_rate_limit_is_per_account():
    injector = FaultInjector()
    injector.configure({"rate_limit": {"per_second": 1, "burst": 1}}, now=0.0)
    assert injector.before("a", now=0.0) is None
    limited = injector.before("a", now=0.0)
    assert limited is not None
    assert (limited.status, limited.retry_after) == (429, 1)
    assert injector.before("b", now=0.0) is None


def test_outage_answers_503_until_it_ends():
    injector = FaultInjector()
    injector.configure({"outage_seconds": 5}, now=0.0)
    injected = injector.before("a", now=4.9)
    assert injected is not None
    assert injected.status == 503
    assert injector.before("a", now=5.0) is None


def test_error_rate_one_always_fails_zero_never():
    injector = FaultInjector()
    injector.configure({"error_rate": 1.0, "error_status": 502}, now=0.0)
    injected = injector.before("a", now=0.0)
    assert injected is not None
    assert injected.status == 502
    injector.configure({"error_rate": 0.0}, now=0.0)
    assert injector.before("a", now=0.0) is None


def test_a_configured_retry_after_goes_with_injected_errors_and_429s():
    injector = FaultInjector()
    injector.configure({"error_rate": 1.0, "error_status": 429, "retry_after": 86400}, now=0.0)
    assert injector.before("acct", now=1.0).retry_after == 86400
    injector.configure({"error_rate": 0.0, "rate_limit": {"per_second": 1, "burst": 1}}, now=0.0)
    assert injector.before("acct", now=1.0) is None
    assert injector.before("acct", now=1.0).retry_after == 86400
    assert faults_json(injector.settings, now=1.0)["retry_after"] == 86400
