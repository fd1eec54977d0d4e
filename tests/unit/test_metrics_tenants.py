"""Per-tenant metric families: labelled by tenant, or summed over tenants with the switch off."""

from __future__ import annotations

import pytest

from ktsync.metrics_tenants import PER_TENANT_ENV, Buckets, Reading, combine, per_tenant
from ktsync.tenant_ops import TenantSummary, deferred_of


def outcomes(synced: float) -> Reading:
    return Reading("ktsync_outcomes", "counter", ("outcome",), {("synced",): synced})


def test_each_tenants_samples_get_its_tenant_label_first() -> None:
    readings = combine([("default", [outcomes(3)]), ("acme", [outcomes(5)])], labelled=True)

    assert readings == [
        Reading(
            "ktsync_outcomes",
            "counter",
            ("tenant", "outcome"),
            {("default", "synced"): 3, ("acme", "synced"): 5},
        )
    ]


def test_with_the_switch_off_families_are_summed_over_tenants() -> None:
    latency = [
        Reading(
            "ktsync_sync_latency_seconds",
            "histogram",
            ("lane",),
            {("live",): Buckets((("1", 2), ("+Inf", 3)), 4.0)},
        )
    ]
    tokens = [Reading("ktsync_limiter_tokens", "gauge", (), {(): 7}, summed=False)]
    home = [outcomes(3), *latency, *tokens]
    acme = [outcomes(5), *latency, Reading("ktsync_limiter_tokens", "gauge", (), {(): 1}, summed=False)]

    by_name = {r.name: r for r in combine([("default", home), ("acme", acme)], labelled=False)}

    assert by_name["ktsync_outcomes"].samples == {("synced",): 8}
    assert by_name["ktsync_sync_latency_seconds"].samples == {
        ("live",): Buckets((("1", 4), ("+Inf", 6)), 8.0)
    }
    assert by_name["ktsync_limiter_tokens"].samples == {(): 7}  # one account's gauge: the default tenant's


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("1", True), ("yes", True), ("0", False), ("off", False)]
)
def test_the_switch_reads_the_environment(value: str | None, expected: bool) -> None:
    assert per_tenant({} if value is None else {PER_TENANT_ENV: value}) is expected


def test_a_wrong_switch_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match=PER_TENANT_ENV):
        per_tenant({PER_TENANT_ENV: "maybe"})


def test_deferred_counts_only_the_accounts_own_fairness_keys() -> None:
    counts = {"aaa:live": 2, "aaa:bulk": 3, "aaab:bulk": 7}

    assert deferred_of(counts, "aaa") == 5
    assert deferred_of(counts, "zzz") == 0


def test_a_summary_line_says_what_is_unknown() -> None:
    assert TenantSummary("acme", False, 2, None).line() == "tenant acme: DISABLED, dead letters 2, deferred ?"
