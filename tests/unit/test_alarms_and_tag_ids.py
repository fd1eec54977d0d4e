"""ALARMs said once per while; the state's tag ids tell a tag deleted in KlickTipp; newer state keys."""

from __future__ import annotations

import json
import logging

import pytest

from ktsync.worker.alarms import Alarms
from ktsync.worker.state.base import ContactState


def test_an_alarm_is_said_once_per_while_per_key(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    alarms = Alarms(every=600, clock=lambda: now[0])
    caplog.set_level(logging.ERROR, logger="ktsync.alarm")

    said = [alarms.say("config:a", "ALARM: %s", "a"), alarms.say("config:a", "ALARM: %s", "a"),
            alarms.say("config:b", "ALARM: %s", "b")]  # fmt: skip
    now[0] += 601
    said.append(alarms.say("config:a", "ALARM: %s", "a"))

    assert said == [True, False, True, True]
    assert [r.getMessage() for r in caplog.records] == ["ALARM: a", "ALARM: b", "ALARM: a"]


STATE = ContactState("hubspot", "1", tags=frozenset({"[CRM] a", "[CRM] b"}), tag_ids=frozenset({"11", "12"}))


@pytest.mark.parametrize(
    ("account", "carried"),
    [
        ({"[CRM] a": "11", "[CRM] b": "12"}, {"[CRM] a", "[CRM] b"}),
        ({"[CRM] a": "11"}, {"[CRM] a"}),  # b deleted in KlickTipp
        ({"[CRM] a": "11", "[CRM] b": "99"}, {"[CRM] a"}),  # b deleted and created again
    ],
)
def test_a_tag_whose_id_changed_or_vanished_is_no_longer_carried(
    account: dict[str, str], carried: set[str]
) -> None:
    assert STATE.carried(account) == carried


def test_a_state_without_tag_ids_trusts_its_names_and_round_trips() -> None:
    old = ContactState("hubspot", "1", tags=frozenset({"[CRM] a"}))
    assert old.carried({}) == {"[CRM] a"}
    assert ContactState.from_json(STATE.to_json()) == STATE


def test_a_state_written_by_a_later_release_is_read_without_its_new_keys() -> None:
    data = {**json.loads(STATE.to_json()), "from_the_future": [1, 2]}
    assert ContactState.from_json(json.dumps(data)) == STATE
