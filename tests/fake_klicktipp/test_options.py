"""Options and profiles (pure): a profile is a preset, single switches override it."""

from __future__ import annotations

import dataclasses

import pytest

from fake_klicktipp.options import (
    PROFILES,
    RECORDED_SWITCHES,
    Options,
    as_profile,
    options_json,
    profile_options,
    updated_options,
)
from fake_klicktipp.seed import build, default_seed


def test_the_documented_profile_is_the_defaults():
    assert profile_options("documented") == Options()
    assert PROFILES == ("documented", "recorded")


def test_the_recorded_profile_sets_every_recorded_switch():
    recorded = options_json(profile_options("recorded"))
    assert recorded["profile"] == "recorded"
    assert {name: recorded[name] for name in RECORDED_SWITCHES} == dict(RECORDED_SWITCHES)


def test_a_profile_applies_first_and_the_other_changes_override_it():
    options = updated_options(Options(), {"german": False, "profile": "recorded"})
    assert (options.profile, options.german, options.raw_search_miss) == ("recorded", False, True)


def test_switching_profile_resets_every_switch_but_keeps_the_log_limit():
    tuned = updated_options(Options(), {"auth_failure_status": 401, "request_log_limit": 7})
    back = updated_options(updated_options(tuned, {"profile": "recorded"}), {"profile": "documented"})
    assert back == dataclasses.replace(Options(), request_log_limit=7)


def test_a_preset_is_copied_not_shared():
    first = profile_options("recorded")
    first.unsubscribed_error.append("mutated")
    assert profile_options("recorded").unsubscribed_error == ["Error 4"]


@pytest.mark.parametrize(
    "changes",
    [
        {"profile": "real"},
        {"email_required_status": 400},
        {"unknown_tag_error": True},
        {"omit_tag_maps": 1},
        {"nope": 1},
    ],
)
def test_bad_options_are_refused(changes):
    with pytest.raises(ValueError, match=r"."):
        updated_options(Options(), changes)


def test_as_profile():
    assert as_profile("recorded") == "recorded"
    with pytest.raises(ValueError, match="unknown profile"):
        as_profile("real")


def test_seed_options_go_on_top_of_the_start_up_profile():
    seeded = build(default_seed() | {"options": {"german": False}}, "recorded")
    assert (seeded.options.profile, seeded.options.german, seeded.options.index_shape) == (
        "recorded",
        False,
        "array",
    )
    assert build(default_seed() | {"options": {"profile": "documented"}}, "recorded").options == Options()
