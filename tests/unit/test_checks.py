"""``ktsync check``'s comparison (ktsync.worker.checks): each configured key against the account, pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from ktsync.config.settings import DEFAULT_CONFIG_PATH, Settings, settings_from_dict
from ktsync.worker.checks import (
    Account,
    Finding,
    Status,
    compare,
    listids_to_read,
    problems_by_key,
    report,
    summary,
)
from ktsync.worker.preflight import account_problems

FIELDS = {
    "fieldFirstName": "First Name",
    "fieldLastName": "Last Name",
    "field100001": "CRM Contact ID",
    "field100002": "Lead Score",
}
LISTS = {"3": "", "23": "CRM Single Opt-In", "24": "CRM Double Opt-In"}
TAGS = {"10": "Webinar 2026", "11": "[CRM] [Lifecycle Stage] lead", "12": "[CRM] [List] Newsletter"}


def settings(**sources: dict[str, Any]) -> Settings:
    """The default config with a small mapping; ``sources`` add or replace entries."""
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    document["sources"]["default"].update(
        listid=23, fields={"firstname": "fieldFirstName", "score": {"label": "Lead Score", "type": "number"}}
    )
    document["sources"].update(sources)
    return settings_from_dict(document, {})


def account(fields: Mapping[str, str] = FIELDS, **changes: Any) -> Account:
    return Account(
        **{"fields": fields, "lists": LISTS, "tags": TAGS, "single_optin": {"23": True}, **changes}
    )


def by_key(findings: list[Finding]) -> dict[str, Finding]:
    return {f.key: f for f in findings}


def failed(findings: list[Finding]) -> dict[str, str]:
    return {f.key: f.message for f in findings if f.status is Status.FAIL}


def test_a_fitting_configuration_has_an_ok_line_per_key_and_no_problem() -> None:
    # When the default source is compared with an account that has everything it names
    findings = compare(settings(), account())

    # Then every key it configures is ok, and the tags are informational
    assert [(f.status, f.key) for f in findings] == [
        (Status.OK, "sources.default.listid"),
        (Status.OK, "sources.default.fields.firstname"),
        (Status.OK, "sources.default.fields.score"),
        (Status.OK, "sources.default.crm_id_field"),
        (Status.INFO, "sources.default.tags"),
    ]
    found = by_key(findings)
    assert found["sources.default.listid"].message == 'opt-in process 23 "CRM Single Opt-In" (single opt-in)'
    assert (
        found["sources.default.fields.firstname"].message
        == "data field 'fieldFirstName' (label \"First Name\")"
    )
    assert found["sources.default.fields.score"].message == 'data field labelled "Lead Score" (field100002)'
    assert (
        found["sources.default.crm_id_field"].message == 'data field labelled "CRM Contact ID" (field100001)'
    )
    assert summary(findings) == "everything fits"


def test_a_missing_field_key_or_label_fails_under_its_property() -> None:
    # Given a source of its own whose mapping names a key and a label the account does not have
    config = settings(hubspot={"fields": {"nickname": "fieldNickName", "shoe size": {"label": "Shoe Size"}}})

    # When it is compared
    problems = failed(compare(config, account()))

    # Then each property fails with the worker's own reason, under its full key (spaces and all)
    assert problems == {
        "sources.hubspot.fields.nickname": "the account has no data field 'fieldNickName'",
        "sources.hubspot.fields.shoe size": "the account has no data field labelled 'Shoe Size'",
    }


def test_a_missing_crm_id_field_is_one_problem_with_its_whole_reason() -> None:
    # Given an account without the "CRM Contact ID" field
    fields = {k: v for k, v in FIELDS.items() if v != "CRM Contact ID"}

    # When it is compared
    findings = compare(settings(), account(fields))

    # Then the crm_id_field fails once, its advice kept (a reason with "; " in it stays whole)
    assert failed(findings) == {
        "sources.default.crm_id_field": "the account has no data field labelled 'CRM Contact ID'; create it "
        "in KlickTipp (a custom field of type line) or change the label"
    }
    assert summary(findings) == "1 problem(s)"


def test_an_unknown_listid_fails_and_lists_what_exists() -> None:
    problems = failed(compare(settings(hubspot={"listid": 999}), account()))

    assert list(problems) == ["sources.hubspot.listid"]
    reason = problems["sources.hubspot.listid"]
    assert reason.startswith("opt-in process 999 does not exist (account has: 23 (CRM Single Opt-In), ")
    assert reason.endswith("24 (CRM Double Opt-In), 3 (default double opt-in))")


def test_no_listid_fails_as_the_worker_would() -> None:
    document: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    config = settings_from_dict(document, {})  # listid: null, and no KTSYNC_LISTID

    problems = failed(compare(config, account()))

    assert problems["sources.default.listid"].startswith("no opt-in process: set it here or in KTSYNC_LISTID")


@pytest.mark.parametrize(
    ("listid", "single_optin", "expected"),
    [
        (23, {"23": True}, 'opt-in process 23 "CRM Single Opt-In" (single opt-in)'),
        (24, {"24": False}, 'opt-in process 24 "CRM Double Opt-In" (double opt-in)'),
        (3, {"3": False}, "opt-in process 3 (unnamed: the account's default) (double opt-in)"),
        (24, {}, 'opt-in process 24 "CRM Double Opt-In"'),  # details not read: still fits
    ],
)
def test_an_existing_listid_says_its_name_and_kind(
    listid: int, single_optin: dict[str, bool], expected: str
) -> None:
    found = by_key(compare(settings(hubspot={"listid": listid}), account(single_optin=single_optin)))

    assert found["sources.hubspot.listid"] == Finding(Status.OK, "sources.hubspot.listid", expected)


def test_a_listed_opt_in_process_whose_details_cannot_be_read_is_a_problem() -> None:
    unreadable = {"23": "api.optin.retrieve: HTTP 404 not_found: gone"}

    problems = failed(compare(settings(), account(single_optin={}, unreadable=unreadable)))

    assert problems == {
        "sources.default.listid": 'opt-in process 23 "CRM Single Opt-In" exists, but its details cannot be '
        "read (api.optin.retrieve: HTTP 404 not_found: gone)"
    }


def test_listids_to_read_are_the_configured_ones_that_exist_each_once() -> None:
    config = settings(hubspot={"listid": 24}, close={"listid": 999}, zoho={"listid": 24})

    assert listids_to_read(config, LISTS) == ["23", "24"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, '0 tags named "[CRM] …" exist'),
        ({"11": "[CRM] [Lifecycle Stage] lead"}, '1 tag named "[CRM] …" exists'),
        (TAGS, '2 tags named "[CRM] …" exist'),
    ],
)
def test_missing_tags_are_no_problem_only_counted(tags: dict[str, str], expected: str) -> None:
    findings = compare(settings(), account(tags=tags))

    tag_line = by_key(findings)["sources.default.tags"]
    assert tag_line.status is Status.INFO
    assert tag_line.message.startswith(
        f"{expected}; the worker creates the others its 3 rules name on demand"
    )
    assert "SmartTag is not checked" in tag_line.message
    assert summary(findings) == "everything fits"


def test_the_problems_are_exactly_those_the_worker_refuses_to_start_with() -> None:
    # Given a configuration with several misfits at once
    config = settings(hubspot={"listid": 999, "crm_id_field": "CRM-ID", "fields": {"x": "fieldX"}})

    # When it is compared
    problems = failed(compare(config, account()))

    # Then each worker problem is there, as one line per key
    worker = account_problems(config, FIELDS, LISTS)
    assert "; ".join(f"{k}: {v}" for k, v in problems.items()) == "; ".join(worker)


@pytest.mark.parametrize(
    ("problems", "expected"),
    [
        ([], {}),
        (["sources.a.listid: gone"], {"sources.a.listid": ["gone"]}),
        (["sources.a.fields.b c: no: really"], {"sources.a.fields.b c": ["no: really"]}),  # a known key
        (
            ["sources.a.crm_id_field: missing; create it"],
            {"sources.a.crm_id_field": ["missing; create it"]},
        ),
        (["worker.thing: new check"], {"worker.thing": ["new check"]}),  # a key we do not list: kept
        (["without a key"], {"$": ["without a key"]}),
    ],
)
def test_problems_are_grouped_by_the_key_they_name(
    problems: list[str], expected: dict[str, list[str]]
) -> None:
    known = ["sources.a.listid", "sources.a.crm_id_field", "sources.a.fields.b c", "sources.a.fields.b"]

    assert problems_by_key(problems, known=known) == expected


def test_a_finding_renders_as_one_aligned_line() -> None:
    assert Finding(Status.OK, "k", "m").line() == "ok    k: m"
    assert Finding(Status.INFO, "k", "m").line() == "info  k: m"
    assert Finding(Status.FAIL, "k", "m").line() == "FAIL  k: m"


def test_the_json_report_lists_problems_and_every_check() -> None:
    findings = [
        Finding(Status.OK, "a", "fits"),
        Finding(Status.FAIL, "b", "gone"),
        Finding(Status.INFO, "c", "fyi"),
    ]

    document = json.loads(json.dumps(report(findings)))

    assert document == {
        "ok": False,
        "problems": [{"status": "fail", "key": "b", "message": "gone"}],
        "checks": [
            {"status": "ok", "key": "a", "message": "fits"},
            {"status": "fail", "key": "b", "message": "gone"},
            {"status": "info", "key": "c", "message": "fyi"},
        ],
    }
    assert report([findings[0]])["ok"] is True
