"""The log of API requests the fake answered, for tests to assert on (``GET /_fake/requests``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_SECRET_KEYS = frozenset({"password"})


@dataclass(frozen=True)
class LoggedRequest:
    """One answered API request; ``ts`` is the server's ``time.time()`` when it arrived."""

    ts: float
    method: str
    path: str
    operation: str | None
    status: int
    account: str | None
    body: Any
    query: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "ts": self.ts,
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "status": self.status,
            "account": self.account,
            "body": self.body,
            "query": dict(self.query),
        }


def redact(body: Any) -> Any:
    """The body with password values masked."""
    if isinstance(body, Mapping) and _SECRET_KEYS & body.keys():
        return {key: "***" if key in _SECRET_KEYS else value for key, value in body.items()}
    return body


class RequestLog:
    """The newest ``limit`` requests, oldest first."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, entry: LoggedRequest) -> None:
        """Append one entry."""
        self._entries.append(entry)

    def since(self, ts: float | None) -> list[LoggedRequest]:
        """Entries strictly newer than ``ts`` (all when ``None``)."""
        if ts is None:
            return list(self._entries)
        newer: list[LoggedRequest] = []
        for entry in reversed(self._entries):
            if entry.ts <= ts:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
