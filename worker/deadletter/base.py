"""What a dead letter is and the interface every dead-letter backend offers."""

from __future__ import annotations

from collections.abc import Mapping
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadLetter:
        return cls(**dict(data))


class DeadLetterStore(Protocol):
    def add(self, letter: DeadLetter) -> None: ...

    def get(self, letter_id: str) -> DeadLetter | None: ...

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        ...

    def count(self) -> int: ...

    def remove(self, letter_id: str) -> bool: ...
