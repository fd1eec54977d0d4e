"""Helpers for the project's tests: start the fake as a subprocess, drive its control endpoints.

    with running_fake() as fake:
        session = requests.Session()
        session.headers.update(partner_headers())
        session.get(f"{fake.base_url}/tag")
        fake.control.faults(rate_limit={"per_second": 5, "burst": 5})
        fake.control.use_profile("recorded")  # the recorded bodies until the next reset
        print(fake.control.state()["doi_emails"])  # [] on the seed

``running_fake(profile="recorded")`` starts the server with ``--profile recorded``; its resets then
return to the recorded profile.

Several accounts, each with data of its own (a benchmark's tenants)::

    fake.control.add_accounts([account_entry(f"tenant-{n}") for n in range(50)])
    session.headers.update(account_headers("tenant-7"))
    fake.control.state(account="tenant-7")["contacts"]  # that account's contacts only
    fake.control.requests(account="tenant-7")           # the requests made as that account

The ``DEMO_*`` constants and ids name the data of the shipped seed (``fake_klicktipp/seed.json``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, cast

import requests

from fake_klicktipp.auth import partner_signature
from fake_klicktipp.options import Profile
from ktsync.core.processes import stop

DEMO_USERNAME: Final = "demo"
DEMO_PASSWORD: Final = "demo-secret"  # noqa: S105 - the fake's published demo credential
DEMO_DEVELOPER_KEY: Final = "0123456789abcdef"
DEMO_CUSTOMER_KEY: Final = "customer-key"
DEFAULT_DOI_LIST_ID: Final = 3
SINGLE_OPT_IN_LIST_ID: Final = 23
DOUBLE_OPT_IN_LIST_ID: Final = 24
WEBINAR_TAG_ID: Final = 10
LIFECYCLE_LEAD_TAG_ID: Final = 11
SMART_TAG_ID: Final = 900
EXISTING_CONTACT_ID: Final = 1000001
EXISTING_EMAIL: Final = "existing@shop.example"
UNSUBSCRIBED_CONTACT_ID: Final = 1000002
UNSUBSCRIBED_EMAIL: Final = "gone@shop.example"
CRM_CONTACT_ID_FIELD: Final = "field100001"

_READY = re.compile(rb"fake-klicktipp listening on http://([^:\s]+):(\d+)")
START_TIMEOUT_SECONDS: Final = 10.0


def partner_headers(
    username: str = DEMO_USERNAME,
    developer_key: str = DEMO_DEVELOPER_KEY,
    customer_key: str = DEMO_CUSTOMER_KEY,
) -> dict[str, str]:
    """``X-Un`` and ``X-Ci`` headers for partner (developer + customer key) auth."""
    return {"X-Un": username, "X-Ci": partner_signature(developer_key, customer_key)}


def account_password(username: str) -> str:
    """The password ``account_entry`` gives ``username``."""
    return f"{username}-secret"


def account_customer_key(username: str) -> str:
    """The customer key ``account_entry`` gives ``username`` (its developer key is the demo one)."""
    return f"{username}-key"


def account_entry(username: str, **data: Any) -> dict[str, Any]:
    """A seed account entry (see ``fake_klicktipp.seed``) for ``username``: ``account_password``, the
    demo developer key and ``account_customer_key``; ``data`` (e.g. ``tags=[...]``) is its own starting
    data, else it starts from the seed's."""
    return {
        "username": username,
        "password": account_password(username),
        "developer_key": DEMO_DEVELOPER_KEY,
        "customer_key": account_customer_key(username),
        "profile": {"username": username, "email": f"{username}@accounts.example"},
        **data,
    }


def account_headers(username: str) -> dict[str, str]:
    """Partner headers for an account made by ``account_entry``."""
    return partner_headers(username, customer_key=account_customer_key(username))


class FakeControl:
    """A thin client for the fake's ``/_fake/*`` control endpoints."""

    def __init__(self, base_url: str, session: requests.Session | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout = timeout

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/_fake/{endpoint}", timeout=self._timeout, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", ...}``."""
        return cast(dict[str, Any], self._call("GET", "health"))

    def reset(self, seed: Mapping[str, Any] | Path | None = None) -> None:
        """Back to ``seed`` (a seed document or file; default: the server's start-up seed)."""
        document = json.loads(seed.read_text(encoding="utf-8")) if isinstance(seed, Path) else seed
        self._call("POST", "reset", json=document)

    def state(self, account: str | None = None) -> dict[str, Any]:
        """The full state dump of one account (default: the primary, the seed's first): its contacts,
        tags, lists, fields, doi_emails; and the fake's sessions, faults, options."""
        params = {} if account is None else {"account": account}
        return cast(dict[str, Any], self._call("GET", "state", params=params))

    def requests(self, since: float | None = None, account: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests, oldest first; only those after ``since`` (server ``time.time()``), only
        those made as ``account``."""
        params = {} if since is None else {"since": repr(since)}
        if account is not None:
            params["account"] = account
        return cast(list[dict[str, Any]], self._call("GET", "requests", params=params)["requests"])

    def accounts(self) -> list[dict[str, Any]]:
        """Every account: ``{"username", "contacts": N, "primary": bool}``, in the order added."""
        return cast(list[dict[str, Any]], self._call("GET", "accounts")["accounts"])

    def add_accounts(self, entries: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add accounts (seed account entries, e.g. ``account_entry(name)``), each starting from the last
        reset's seed data unless it names its own; their names. Until the next reset."""
        return cast(list[str], self._call("POST", "accounts", json={"accounts": list(entries)})["added"])

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._call("DELETE", "requests")

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Partially update the fault settings (see ``fake_klicktipp.faults``); the current settings."""
        return cast(dict[str, Any], self._call("POST", "faults", json=settings))

    def options(self, **changes: Any) -> dict[str, Any]:
        """Partially update the behaviour options (see ``fake_klicktipp.options``); the current options."""
        return cast(dict[str, Any], self._call("POST", "options", json=changes))

    def use_profile(self, profile: Profile, **overrides: Any) -> dict[str, Any]:
        """Switch to a profile's whole preset (single ``overrides`` on top); the current options.

        It lasts until the next reset, which returns to the server's start-up profile.
        """
        return self.options(profile=profile, **overrides)

    def change_password(self, username: str, password: str) -> None:
        """The account's owner sets a new password (existing sessions stay until invalidated)."""
        self._call("POST", "password", json={"username": username, "password": password})

    def invalidate_sessions(self) -> int:
        """Drop every login session; how many there were."""
        return int(self._call("POST", "sessions/invalidate")["invalidated"])


@dataclass(frozen=True)
class RunningFake:
    """A fake server subprocess: where it listens and how to control it."""

    base_url: str
    control: FakeControl
    process: subprocess.Popen[bytes]


def _command(port: int, seed: Path | None, profile: Profile | None) -> list[str]:
    command = [sys.executable, "-m", "fake_klicktipp", "--host", "127.0.0.1", "--port", str(port)]
    if seed is not None:
        command += ["--seed", str(seed)]
    return [*command, "--profile", profile] if profile is not None else command


def _environment() -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": package_root if not existing else f"{package_root}{os.pathsep}{existing}",
    }


def _read(stream: IO[bytes]) -> bytes:
    # pread leaves the shared file offset alone: the child process writes through the same one
    fd = stream.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _wait_until_ready(process: subprocess.Popen[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        found = _READY.search(_read(stdout))
        if found is not None:
            base_url = f"http://{found.group(1).decode()}:{found.group(2).decode()}"
            try:
                if requests.get(f"{base_url}/_fake/health", timeout=1).ok:
                    return base_url
            except requests.RequestException:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    process.wait()
    detail = _read(stderr).decode(errors="replace") or _read(stdout).decode(errors="replace")
    raise RuntimeError(f"fake KlickTipp did not become ready (exit {process.returncode}):\n{detail}")


@contextmanager
def running_fake(
    *, port: int | None = None, seed: Path | None = None, profile: Profile | None = None
) -> Iterator[RunningFake]:
    """Start ``python -m fake_klicktipp`` on loopback (a free port unless given), stop it afterwards.

    ``profile`` is the start-up profile (default: the server's, documented).
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            _command(port or 0, seed, profile), stdout=stdout, stderr=stderr, env=_environment()
        )
        try:
            base_url = _wait_until_ready(process, stdout, stderr)
            yield RunningFake(base_url=base_url, control=FakeControl(base_url), process=process)
        finally:
            if process.poll() is None:
                stop(process)
