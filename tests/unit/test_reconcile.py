"""Reconciliation: stale contacts are re-checked (from the CRM if its API is there, else KlickTipp's
status), transient dead letters are replayed; everything else is left alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ktsync.config.settings import load_settings
from ktsync.worker.deadletter import DeadLetter, MemoryDeadLetterStore
from ktsync.worker.reconcile import recheck_messages, reconcile
from ktsync.worker.state import ContactState, MemoryStateStore

NOW = 1_800_000_000.0
DAY = 24 * 3600.0
SETTINGS = load_settings({"KTSYNC_LISTID": "23"})


class RecordingSender:
    """A replay and reconcile :class:`~ktsync.core.replay.Sender` that records what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], dict[str, Any]]] = []

    def send(self, task: str, args: list[Any], kwargs: dict[str, Any], task_id: str) -> str:
        self.sent.append((task, args, kwargs))
        return f"task-{len(self.sent)}"


def contact(source: str, crm_id: str, updated_at: float, **changes: Any) -> ContactState:
    base = ContactState(
        source=source, crm_contact_id=crm_id, klicktipp_id=f"kt-{crm_id}", updated_at=updated_at
    )
    return replace(base, **changes)


def letter(letter_id: str, reason: str, at: float) -> DeadLetter:
    message = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": letter_id,
               "email": "a@shop.example", "occurred_at": 1}  # fmt: skip
    return DeadLetter(letter_id, message, "ktsync.sync_contact", reason, {}, 8, at, at)


def test_stale_contacts_are_rechecked_from_the_crm_or_klicktipp_and_fresh_ones_left_alone() -> None:
    # Given a stale HubSpot contact (CRM API configured), a stale Zoho one (no API), a fresh one, a tombstone
    state = MemoryStateStore()
    state.put(contact("hubspot", "1", NOW - 2 * DAY))
    state.put(contact("zoho", "2", NOW - 3 * DAY))
    state.put(contact("hubspot", "3", NOW - 60))
    state.put(contact("hubspot", "4", NOW - 5 * DAY, deleted_at=NOW - 5 * DAY))
    sender = RecordingSender()

    # When reconciliation runs
    report = reconcile(state=state, dead_letters=MemoryDeadLetterStore(clock=lambda: NOW), settings=SETTINGS,
                       crm_sources={"hubspot"}, sender=sender, clock=lambda: NOW)  # fmt: skip

    # Then the stale ones are re-checked, oldest first: the status from KlickTipp for both, the data
    # from the CRM where its API is configured
    assert (report.refetched, report.status_checks) == (1, 2)
    assert [(task, args[0]["type"]) for task, args, _ in sender.sent] == [
        ("ktsync.refresh_from_klicktipp", "klicktipp.contact_changed"),
        ("ktsync.fetch_and_sync", "crm.contact_changed"),
        ("ktsync.refresh_from_klicktipp", "klicktipp.contact_changed"),
    ]
    assert sender.sent[0][1][0]["klicktipp_id"] == "kt-2"


def test_only_transient_dead_letters_old_enough_are_replayed() -> None:
    dead_letters = MemoryDeadLetterStore(clock=lambda: NOW)
    dead_letters.add(letter("old-transient", "retries_exhausted", NOW - 2 * 3600))
    dead_letters.add(letter("new-transient", "retries_exhausted", NOW - 60))
    dead_letters.add(letter("old-validation", "validation", NOW - 2 * 3600))
    sender = RecordingSender()

    report = reconcile(state=MemoryStateStore(), dead_letters=dead_letters, settings=SETTINGS, crm_sources=set(),
                       sender=sender, clock=lambda: NOW)  # fmt: skip

    assert report.replayed == 1
    assert [kwargs for _, _, kwargs in sender.sent] == [{"replay_of": "old-transient"}]
    replayed = dead_letters.get("old-transient")
    assert replayed is not None
    assert replayed.replays == 1  # stays until the replay succeeds


def test_which_rechecks_a_contact_gets() -> None:
    changed = {
        "v": 1,
        "type": "crm.contact_changed",
        "source": "zoho",
        "crm_contact_id": "9",
        "occurred_at": NOW,
    }
    status = {"v": 1, "type": "klicktipp.contact_changed", "klicktipp_id": "77", "occurred_at": NOW}
    assert recheck_messages("zoho", "9", None, NOW, crm_api=False) == []
    assert recheck_messages("zoho", "9", None, NOW, crm_api=True) == [changed]
    assert recheck_messages("zoho", "9", "77", NOW, crm_api=True) == [changed, status]
    assert recheck_messages("zoho", "9", "77", NOW, crm_api=False) == [status]
