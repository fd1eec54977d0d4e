"""`dlq replay --refetch` and `resync --from`: a contact is reloaded from its CRM only where that CRM's
API is configured; everything else is refused with the reason, up front, never dead-lettered as config."""

from __future__ import annotations

from typing import Any

import pytest

from ktsync.core.contract import TASK_NAMES, MessageType
from ktsync.core.replay import NOTIFY_TASK, Refetch, replay
from ktsync.worker.deadletter import DeadLetter
from ktsync.worker.reconcile import NoCrmApi, crm_api_sources, no_crm_api, resync_origin
from tests.unit.test_reconcile import RecordingSender

NOW = 1_800_000_000.0
UPSERT, CHANGED = TASK_NAMES[MessageType.UPSERT], TASK_NAMES[MessageType.CHANGED]


def letter(letter_id: str, message: dict[str, Any], task: str = UPSERT) -> DeadLetter:
    return DeadLetter(letter_id, message, task, "mapping", {}, 1, NOW - 60, NOW - 60)


def upsert(source: str, crm_id: str) -> dict[str, Any]:
    return {"v": 1, "type": "contact.upsert", "source": source, "crm_contact_id": crm_id,
            "email": "a@shop.example", "properties": {"website": "www.no-scheme.example"}, "occurred_at": 1}  # fmt: skip


def test_a_refetch_reloads_the_contact_from_its_crm_instead_of_resending_the_old_value() -> None:
    sender = RecordingSender()

    [result] = replay([letter("L1", upsert("hubspot", "501"))], sender, refetch=Refetch({"hubspot"}, NOW))

    assert (result.task_id, result.problem, result.refetched) == ("task-1", "", True)
    assert sender.sent == [(CHANGED, [{"v": 1, "type": "crm.contact_changed", "source": "hubspot",
                                       "crm_contact_id": "501", "occurred_at": NOW}], {"replay_of": "L1"})]  # fmt: skip


def test_a_plain_replay_resends_the_stored_message_as_it_is() -> None:
    sender = RecordingSender()
    message = upsert("hubspot", "501")

    replay([letter("L1", message)], sender)

    assert sender.sent == [(UPSERT, [message], {"replay_of": "L1"})]


def test_a_replay_is_counted_on_its_letter_before_it_is_published_and_a_refused_one_not_at_all() -> None:
    # A worker that fails the replay again at once rewrites the letter; a count written after the
    # publish could overwrite that letter, or be overwritten by it (seen in CI: replays 0 after a replay).
    sender, order = RecordingSender(), []
    noted = lambda letter_id: order.append((letter_id, len(sender.sent)))  # noqa: E731

    replay([letter("L1", upsert("hubspot", "501")), letter("L2", {"raw": "x"}), letter("L3", upsert("hubspot", "7"))],
           sender, noted=noted)  # fmt: skip

    assert order == [("L1", 0), ("L3", 1)]


@pytest.mark.parametrize(
    ("stored", "task", "says"),
    [
        (upsert("shop", "9"), UPSERT, "no CRM API is configured for source 'shop'; fix the value in the CRM"),
        ({"v": 1, "type": "contact.deleted", "source": "hubspot", "crm_contact_id": "5", "occurred_at": 1},
         TASK_NAMES[MessageType.DELETED], "a contact.deleted has nothing to reload from a CRM"),
        ({"url": "https://crm.example/hook", "payload": {}}, NOTIFY_TASK, "a CRM callback has nothing to reload"),
        ({"raw": "'not a dict'"}, UPSERT, "a message without a type has nothing to reload"),
        ({"v": 1, "type": "contact.upsert", "source": "hubspot", "email": "a@shop.example", "occurred_at": 1},
         UPSERT, "the message names no CRM contact"),
    ],
    ids=["no CRM API", "a deletion", "a callback", "not a message", "no CRM id"],
)  # fmt: skip
def test_what_cannot_be_reloaded_is_refused_with_the_reason_and_nothing_is_sent(
    stored: dict[str, Any], task: str, says: str
) -> None:
    sender = RecordingSender()

    [result] = replay([letter("L1", stored, task)], sender, refetch=Refetch({"hubspot"}, NOW))

    assert result.task_id is None
    assert says in result.problem
    assert sender.sent == []


def test_without_a_crm_api_the_refusal_says_what_to_do_instead() -> None:
    [result] = replay([letter("L1", upsert("shop", "9"))], RecordingSender(),
                      refetch=Refetch(frozenset(), NOW, why_not=no_crm_api))  # fmt: skip

    assert "ktsync has no CRM API client for source 'shop'" in result.problem
    assert "ktsync dlq show ID --message > fix.jsonl" in result.problem
    assert "ktsync dlq purge ID" in result.problem


def test_a_dry_run_refetch_says_what_it_would_do_and_sends_nothing() -> None:
    sender = RecordingSender()
    results = replay([letter("L1", upsert("hubspot", "1")), letter("L2", upsert("shop", "2"))], sender,
                     dry_run=True, refetch=Refetch({"hubspot"}, NOW))  # fmt: skip

    assert [(r.task_id, bool(r.problem)) for r in results] == [(None, False), (None, True)]
    assert sender.sent == []


@pytest.mark.parametrize(
    ("source", "asked", "configured", "origin"),
    [
        ("hubspot", None, {"hubspot"}, "crm"),
        ("hubspot", None, set(), "klicktipp"),
        ("shop", None, {"hubspot"}, "klicktipp"),
        ("hubspot", "klicktipp", {"hubspot"}, "klicktipp"),
        ("hubspot", "crm", {"hubspot"}, "crm"),
    ],
)
def test_resync_reads_from_the_crm_where_its_api_is_configured_and_from_klicktipp_elsewhere(
    source: str, asked: str | None, configured: set[str], origin: str
) -> None:
    assert resync_origin(source, asked, configured) == origin


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("hubspot", "no CRM API is configured for source 'hubspot' (HUBSPOT_ACCESS_TOKEN is not set)"),
        ("close", "(CLOSE_API_KEY is not set)"),
        ("shop", "ktsync has no CRM API client for source 'shop' (only for close, hubspot, zoho)"),
    ],
)
def test_resync_from_the_crm_without_its_api_is_refused_up_front(source: str, says: str) -> None:
    with pytest.raises(NoCrmApi, match=r".") as exc:
        resync_origin(source, "crm", set())
    assert says in str(exc.value)


def test_the_crm_apis_configured_are_those_whose_credentials_the_environment_has() -> None:
    assert crm_api_sources({}) == frozenset()
    assert crm_api_sources({"HUBSPOT_ACCESS_TOKEN": "pat-eu1-x", "CLOSE_API_KEY": "api_x"}) == {
        "hubspot",
        "close",
    }
