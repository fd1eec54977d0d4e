"""The contact as KlickTipp should see it after an event, and the decision whether to act at all. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ktsync.worker.state.base import ContactState


@dataclass(frozen=True)
class Desired:
    """Identity, mapped field values and owned tag names the contact should end up with."""

    email: str | None
    sms_number: str | None
    fields: Mapping[str, str]
    tags: frozenset[str]

    @property
    def fields_hash(self) -> str:
        return _digest(sorted(self.fields.items()))

    @property
    def state_hash(self) -> str:
        """Covers e-mail, SMS number, mapped fields and desired tags: equal hash, nothing to do."""
        return _digest([self.email, self.sms_number, self.fields_hash, sorted(self.tags)])


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()[:32]


class Skip(StrEnum):
    DUPLICATE = "duplicate"  # this event_id was applied before
    STALE = "stale"  # older than what was applied last (or than the deletion)
    UNCHANGED = "unchanged"  # the result equals the last applied state


def skip_reason(
    *, occurred_at: float, stored: ContactState | None, desired_hash: str | None, duplicate: bool
) -> Skip | None:
    """Why an event needs no KlickTipp call at all, or None when it must be applied."""
    if duplicate:
        return Skip.DUPLICATE
    if stored is None:
        return None
    if occurred_at < stored.occurred_at or (stored.is_tombstone and occurred_at <= stored.occurred_at):
        return Skip.STALE
    if not stored.is_tombstone and desired_hash is not None and desired_hash == stored.state_hash:
        return Skip.UNCHANGED
    return None
