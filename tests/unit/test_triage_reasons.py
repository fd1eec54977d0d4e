"""Every reason a KlickTipp error can dead-letter with has a meaning and a fix in the runbook."""

from __future__ import annotations

from ktsync.worker.deadletter.triage import RUNBOOK
from ktsync.worker.klicktipp.errors import APIError, KlickTippError


def subclasses(cls: type[KlickTippError]) -> set[type[KlickTippError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_each_permanent_klicktipp_error_has_a_runbook_entry() -> None:
    # Retryable errors end as retries_exhausted; the two bases are never raised themselves
    permanent = {c.reason for c in subclasses(KlickTippError) if not c.retryable} - {APIError.reason}
    assert permanent, "no error classes found"
    assert sorted(permanent - RUNBOOK.keys()) == []
    assert "retries_exhausted" in RUNBOOK
