"""Segment rules to tag names: one tag per value, none for empty values, owned by prefix."""

from __future__ import annotations

import pytest

from ktsync.config.settings import TagRule
from ktsync.worker.sync.segments import desired_tags, is_owned

RULES = (
    TagRule("lifecyclestage", "[CRM] [Lifecycle Stage] {value}"),
    TagRule("hs_lead_status", "[CRM] [Lead Status] {value}"),
    TagRule("lists", "[CRM] [List] {value}"),
)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"lifecyclestage": "lead"}, {"[CRM] [Lifecycle Stage] lead"}),
        (
            {"lifecyclestage": "customer", "hs_lead_status": "OPEN", "lists": ["A", "B"]},
            {
                "[CRM] [Lifecycle Stage] customer",
                "[CRM] [Lead Status] OPEN",
                "[CRM] [List] A",
                "[CRM] [List] B",
            },
        ),
        ({"lifecyclestage": "", "hs_lead_status": None, "lists": []}, set()),
        ({"lists": [" A ", ""]}, {"[CRM] [List] A"}),
        ({"unrelated": "x"}, set()),
        ({"lifecyclestage": 3}, {"[CRM] [Lifecycle Stage] 3"}),
    ],
)
def test_desired_tags(properties: dict[str, object], expected: set[str]) -> None:
    assert desired_tags(properties, RULES) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "owned"),
    [("[CRM] [List] A", True), ("Webinar 2026", False), ("[CRMX] other", False), ("x [CRM]", False)],
)
def test_ownership_is_by_prefix(tag: str, owned: bool) -> None:
    assert is_owned(tag, "[CRM]") is owned
