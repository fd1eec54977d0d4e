"""The fake's memory: seeded records per CRM, queued faults, the request log, and the credentials."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Final

CRMS: Final = ("hubspot", "close", "zoho")
HUBSPOT_TOKEN: Final = "fake-hubspot-token"  # noqa: S105 - the fake's published test credential
CLOSE_API_KEY: Final = "fake-close-api-key"
ZOHO_TOKEN: Final = "fake-zoho-token"  # noqa: S105 - the fake's published test credential
MAX_LOGGED: Final = 10_000


@dataclass
class Fault:
    """The next ``remaining`` API requests (of ``crm`` / under ``path``, or any) get this answer instead."""

    status: int
    remaining: int = 1
    crm: str | None = None
    path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remaining": self.remaining,
            "crm": self.crm,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
        }


@dataclass
class FakeCrmState:
    """Records by CRM and kind (``contacts``; Close also ``leads``), keyed by their ``id``."""

    records: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.records.clear()
        self.faults.clear()
        self.log.clear()

    def put(self, crm: str, kind: str, items: list[dict[str, Any]]) -> int:
        table = self.records.setdefault((crm, kind), {})
        for item in items:
            table[str(item["id"])] = dict(item)
        return len(items)

    def get(self, crm: str, kind: str, record_id: str) -> dict[str, Any] | None:
        return self.records.get((crm, kind), {}).get(record_id)

    def remove(self, crm: str, kind: str, record_id: str) -> bool:
        return self.records.get((crm, kind), {}).pop(record_id, None) is not None

    def take_fault(self, crm: str, path: str) -> Fault | None:
        """The first queued fault that applies to this request, counted down (dropped when used up)."""
        for fault in self.faults:
            if fault.crm in (None, crm) and path.startswith(fault.path or ""):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def record(self, entry: dict[str, Any]) -> None:
        self.log.append({**entry, "at": time.time()})
        del self.log[:-MAX_LOGGED]
