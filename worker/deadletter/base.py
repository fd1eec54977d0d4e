"""What a dead letter is, how to filter them, and the interface every dead-letter backend offers."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class DeadLetter:
    """One task that failed for good: the original message, why, and when."""

    id: str
    message: Mapping[str, Any]
    task: str
    reason: str  # stable slug: "invalid_message", "mapping", "validation", "conflict", "auth", ...
    error: Mapping[str, Any]  # KlickTipp error/code/field/value/message, or the rejection details
    attempts: int
    first_failed_at: float
    last_failed_at: float
    host: str = ""
    replays: int = 0
    source: str = field(default="")

    @property
    def code(self) -> int | None:
        """KlickTipp's numeric error code, when KlickTipp gave one."""
        value = self.error.get("error")
        return value if isinstance(value, int) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadLetter:
        return cls(**dict(data))


@dataclass(frozen=True)
class Filter:
    """Which dead letters an operator means (all given criteria must hold)."""

    reason: str | None = None
    code: int | None = None
    source: str | None = None
    since: float | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.reason is None or letter.reason == self.reason)
            and (self.code is None or letter.code == self.code)
            and (self.source is None or letter.source == self.source)
            and (self.since is None or letter.last_failed_at >= self.since)
        )


@dataclass(frozen=True)
class Cause:
    """Every letter of one (reason, KlickTipp code): how many, their oldest and newest failure, and the
    id of one of them (for what a group's KlickTipp code means)."""

    reason: str
    code: int | None
    count: int
    oldest: float
    newest: float
    sample: str


Census = list[Cause]  # (a method named ``list`` hides the builtin inside the store classes)


def census_of(letters: Iterable[tuple[str, str, int | None, float]]) -> Census:
    """(id, reason, code, last failure) of every letter, counted by cause, biggest first. Pure."""
    found: dict[tuple[str, int | None], list[Any]] = {}  # cause -> [count, oldest, newest, sample]
    for letter_id, reason, code, at in letters:
        seen = found.get((reason, code))
        if seen is None:
            found[(reason, code)] = [1, at, at, letter_id]
        else:
            seen[0] += 1
            seen[1] = min(seen[1], at)
            seen[2] = max(seen[2], at)
    causes = [Cause(reason, code, *figures) for (reason, code), figures in found.items()]
    return sorted(causes, key=lambda c: (-c.count, c.reason, c.code or 0))


@dataclass(frozen=True)
class Bounds:
    """The store keeps at most ``max_entries`` letters, none older than ``max_age`` seconds."""

    max_entries: int = 100_000
    max_age: float = 30 * 24 * 3600


class DeadLetterStore(Protocol):
    def add(self, letter: DeadLetter) -> None:
        """Store a letter; one with the same id (a replay that failed again) replaces it, keeping its
        first failure time and replay count. Evicts beyond the bounds and counts the evictions."""
        ...

    def get(self, letter_id: str) -> DeadLetter | None: ...

    def list(self, where: Filter = Filter(), limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        ...

    def count(self) -> int: ...

    def census(self) -> Census:
        """Every letter counted by (reason, code), biggest group first, without reading a message."""
        ...

    def remove(self, letter_id: str) -> bool: ...

    def remove_many(self, letter_ids: Collection[str]) -> int:
        """Remove these letters at once (an erasure purges a contact's letters); how many were there."""
        ...

    def note_replay(self, letter_id: str) -> None:
        """Count one replay of the letter (it stays until the replayed task succeeds)."""
        ...

    def evicted(self) -> int:
        """How many letters the bounds have pushed out so far."""
        ...


def merge(previous: DeadLetter | None, letter: DeadLetter) -> DeadLetter:
    """A letter that comes back (its replay failed again) keeps its history."""
    if previous is None:
        return letter
    return DeadLetter(**{
        **letter.to_dict(),
        "first_failed_at": previous.first_failed_at,
        "replays": max(previous.replays, letter.replays),
        "attempts": previous.attempts + letter.attempts,
    })  # fmt: skip
