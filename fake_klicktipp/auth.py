"""Who is calling: the partner-key signature (``X-Un`` + ``X-Ci``) and Drupal-style login sessions.

Partner auth: ``X-Ci = base64(HMAC_SHA256(key=bytes.fromhex(developer_key), msg=customer_key) ||
customer_key)``. Sessions: ``POST /account/login`` creates ``sessid`` under the cookie name
``SSESS<md5>``; a session expires ``session_ttl`` seconds after login (``None``: never) on the
server's monotonic clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from fake_klicktipp.model import Account

SESSION_NAME: Final = "SSESS" + hashlib.md5(b"fake-klicktipp", usedforsecurity=False).hexdigest()


def partner_signature(developer_key: str, customer_key: str) -> str:
    """The ``X-Ci`` header value for a developer key (hex) and a customer key."""
    raw_customer = customer_key.encode("utf-8")
    mac = hmac.new(bytes.fromhex(developer_key), raw_customer, hashlib.sha256).digest()
    return base64.b64encode(mac + raw_customer).decode("ascii")


def session_cookie(raw_cookie_header: str) -> str | None:
    """The value of our session cookie in a ``Cookie`` header, if present."""
    for part in raw_cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_NAME and value:
            return value
    return None


@dataclass(frozen=True)
class Session:
    """A login session."""

    sessid: str
    username: str
    created: float


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: the account and how it proved itself."""

    username: str
    via: Literal["session", "partner"]


class Sessions:
    """Live login sessions, by ``sessid``."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self, username: str, now: float) -> Session:
        """A new session (43 url-safe characters, like the recorded ``sessid``)."""
        session = Session(sessid=secrets.token_urlsafe(32), username=username, created=now)
        self._by_id[session.sessid] = session
        return session

    def lookup(self, sessid: str | None, *, now: float, ttl: float | None) -> Session | None:
        """The live session for ``sessid``; expired sessions are dropped on sight."""
        session = None if sessid is None else self._by_id.get(sessid)
        if session is None:
            return None
        if ttl is not None and now - session.created >= ttl:
            del self._by_id[session.sessid]
            return None
        return session

    def drop(self, sessid: str) -> None:
        """Log one session out."""
        self._by_id.pop(sessid, None)

    def clear(self) -> int:
        """Invalidate every session; the number dropped."""
        count = len(self._by_id)
        self._by_id.clear()
        return count


class Credentials:
    """The accounts' passwords and precomputed partner signatures."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self._accounts: dict[str, Account] = {}
        self._passwords: dict[str, str] = {}
        self._signatures: dict[str, str] = {}
        for account in accounts:
            self.add(account)

    def add(self, account: Account) -> None:
        """Know one more account (its password and, with partner keys, its signature)."""
        self._accounts[account.username] = account
        if account.developer_key and account.customer_key:
            self._signatures[account.username] = partner_signature(
                account.developer_key, account.customer_key
            )

    def login(self, username: str, password: str) -> Account | None:
        """The account when the password matches."""
        account = self._accounts.get(username)
        if account is None:
            return None
        expected = self._passwords.get(username, account.password)
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return account

    def change_password(self, username: str, password: str) -> None:
        """A new password for an account (as its owner would set it); sessions stay until invalidated."""
        if username not in self._accounts:
            raise ValueError(f"no account {username!r}")
        if not password:
            raise ValueError("password must not be empty")
        self._passwords[username] = password

    def partner(self, headers: Mapping[str, str]) -> Identity | None:
        """The caller proven by ``X-Un`` + ``X-Ci`` headers, if they match an account."""
        username = headers.get("x-un")
        signature = headers.get("x-ci")
        if not username or not signature:
            return None
        expected = self._signatures.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
            return None
        return Identity(username=username, via="partner")
