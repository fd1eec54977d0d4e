"""Test helpers: start the fake CRM as a subprocess and drive its control endpoints.

with running_fake_crm() as crm:
    crm.control.seed("hubspot", contacts=[{"id": "501", "properties": {"email": "a@shop.example"}}])
    crm.control.fault(429, crm="hubspot", headers={"Retry-After": "2"})
    fetcher = HubSpotFetcher(HUBSPOT_TOKEN, base_url=crm.base_url)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, cast

import requests

from fake_crm.state import CLOSE_API_KEY, HUBSPOT_TOKEN, ZOHO_TOKEN
from ktsync.core.processes import stop

__all__ = [
    "CLOSE_API_KEY",
    "HUBSPOT_TOKEN",
    "ZOHO_TOKEN",
    "FakeCrmControl",
    "RunningFakeCrm",
    "running_fake_crm",
]

_READY: Final = re.compile(rb"fake-crm listening on http://([^:\s]+):(\d+)")
START_TIMEOUT_SECONDS: Final = 10.0


class FakeCrmControl:
    """A thin client for the fake's ``/_fake/*`` endpoints."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._timeout = timeout

    def _call(self, method: str, endpoint: str, json: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_fake/{endpoint}", json=json, timeout=self._timeout
        )
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "health"))

    def reset(self) -> None:
        """Forget every record, fault and logged request."""
        self._call("POST", "reset")

    def seed(
        self, crm: str, contacts: Sequence[Mapping[str, Any]] = (), leads: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store records in the CRM's own JSON shape (each with an ``id``); same id replaces."""
        self._call("POST", f"contacts/{crm}", json={"contacts": list(contacts), "leads": list(leads)})

    def remove(self, crm: str, contact_id: str) -> bool:
        return bool(self._call("DELETE", f"contacts/{crm}/{contact_id}")["removed"])

    def fault(
        self,
        status: int,
        *,
        crm: str | None = None,
        path: str | None = None,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``count`` requests (to ``crm`` and under ``path``, or any) with ``status``."""
        fault = {
            "status": status,
            "crm": crm,
            "path": path,
            "count": count,
            "headers": dict(headers or {}),
            "body": body,
        }
        self._call("POST", "faults", json=fault)

    def faults(self) -> list[dict[str, Any]]:
        """The queued faults, with what is left of each."""
        return cast(list[dict[str, Any]], self._call("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests(self, crm: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests, oldest first (only ``crm``'s when given)."""
        logged = cast(list[dict[str, Any]], self._call("GET", "requests")["requests"])
        return [r for r in logged if crm is None or r["crm"] == crm]

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")


@dataclass(frozen=True)
class RunningFakeCrm:
    """A fake CRM subprocess: where it listens and how to control it."""

    base_url: str
    control: FakeCrmControl
    process: subprocess.Popen[bytes]


def _environment() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not existing else f"{root}{os.pathsep}{existing}"}


def _read(stream: IO[bytes]) -> bytes:
    fd = stream.fileno()  # pread: the child writes through the same file offset
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _wait_until_ready(process: subprocess.Popen[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        found = _READY.search(_read(stdout))
        if found is not None:
            return f"http://{found.group(1).decode()}:{found.group(2).decode()}"
        time.sleep(0.02)
    stop(process)
    detail = _read(stderr).decode(errors="replace") or _read(stdout).decode(errors="replace")
    raise RuntimeError(f"fake CRM did not become ready (exit {process.returncode}):\n{detail}")


@contextmanager
def running_fake_crm(*, port: int = 0) -> Iterator[RunningFakeCrm]:
    """Start ``python -m fake_crm`` on loopback (a free port unless given); stop it afterwards."""
    command = [sys.executable, "-m", "fake_crm", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=stdout, stderr=stderr, env=_environment()
        )
        try:
            base_url = _wait_until_ready(process, stdout, stderr)
            yield RunningFakeCrm(base_url=base_url, control=FakeCrmControl(base_url), process=process)
        finally:
            stop(process)
