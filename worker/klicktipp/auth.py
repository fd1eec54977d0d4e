"""How requests prove who they are: a reused session login or partner headers, behind one Protocol.

Secrets (password, developer and customer keys, the ``X-Ci`` value, the session id) never appear in a
repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from .errors import KlickTippConfigError
from .http import Send
from .models import Account
from .parsing import ShapeError, expect_ok, mapping_of, parse_account

logger = logging.getLogger(__name__)

LOGIN_OPERATION: Final = "api.account.login"
LOGOUT_OPERATION: Final = "api.account.logout"
#: RFC 6265 cookie-name token and cookie-octets: anything else could inject into the Cookie header.
_COOKIE_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE: Final = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")


class Auth(Protocol):
    """An authentication strategy; ``send`` is the wire, so logins pass the gate and the observer."""

    def headers(self, send: Send) -> Mapping[str, str]:
        """Credentials for the next request, logging in first when needed."""
        ...

    def reauthenticate(self, stale: Mapping[str, str]) -> bool:
        """After a 401/403 for ``stale`` credentials: forget them; True if one retry is worthwhile."""
        ...

    def login(self, send: Send) -> Account | None:
        """Make sure credentials are established; the account for a session, None without login."""
        ...

    def logout(self, send: Send) -> None:
        """End the session, if there is one."""
        ...


@dataclass(frozen=True, repr=False)
class _Session:
    name: str
    sessid: str

    @property
    def cookie(self) -> str:
        return f"{self.name}={self.sessid}"

    def __repr__(self) -> str:
        return "_Session(<redacted>)"


def _parse_login(payload: object) -> tuple[_Session, Account]:
    data = mapping_of(payload, "login answer")
    name, sessid = data.get("session_name"), data.get("sessid")
    if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
        raise ShapeError("login answer has no valid session_name")
    if not isinstance(sessid, str) or not _COOKIE_VALUE.fullmatch(sessid):
        raise ShapeError("login answer has no valid sessid")
    return _Session(name, sessid), parse_account(data.get("account"))


class SessionAuth:
    """Username and password: one lazily created session per credential, shared by all threads."""

    def __init__(self, username: str, password: str) -> None:
        if not username.strip() or not password:
            raise KlickTippConfigError("SessionAuth needs a username and a password")
        self.username = username.strip()
        self._password = password
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._account: Account | None = None

    def __repr__(self) -> str:
        state = "logged in" if self._session else "logged out"
        return f"SessionAuth(username={self.username!r}, password=<redacted>, {state})"

    def headers(self, send: Send) -> Mapping[str, str]:
        with self._lock:  # one login at a time; the others wait here and reuse its session
            session = self._session or self._login(send)[0]
            return {"Cookie": session.cookie}

    def reauthenticate(self, stale: Mapping[str, str]) -> bool:
        with self._lock:
            # Another thread may already have logged in again; keep that newer session.
            if self._session is not None and stale.get("Cookie") == self._session.cookie:
                logger.info("klicktipp session for %s was refused; it will log in again", self.username)
                self._session = None
        return True

    def login(self, send: Send) -> Account:
        with self._lock:
            if self._session is None or self._account is None:
                return self._login(send)[1]
            return self._account

    def logout(self, send: Send) -> None:
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                send(
                    LOGOUT_OPERATION, "POST", "/account/logout", expect_ok, headers={"Cookie": session.cookie}
                )
                logger.info("klicktipp session for %s logged out", self.username)

    def _login(self, send: Send) -> tuple[_Session, Account]:
        body = {"username": self.username, "password": self._password}
        session, account = send(LOGIN_OPERATION, "POST", "/account/login", _parse_login, json=body)
        self._session, self._account = session, account
        logger.info("klicktipp session for %s logged in", self.username)
        return session, account


def normalized_developer_key(developer_key: str) -> str:
    """As KlickTipp's own client does (klicktipp-mcp ``auth.js``): every whitespace character removed,
    inner ones too (a key pasted in groups or across lines), and lower-cased."""
    return "".join(developer_key.split()).lower()


def partner_signature(developer_key: str, customer_key: str) -> str:
    """``X-Ci``: base64(HMAC-SHA256(key=hex-decoded developer key, msg=customer key) || customer key).

    The developer key is normalised first (``normalized_developer_key``); the customer key is used
    as given (callers trim it)."""
    developer_key = normalized_developer_key(developer_key)
    if not _HEX.fullmatch(developer_key):
        raise KlickTippConfigError("the developer key must be an even-length hex string")
    customer = customer_key.encode("utf-8")
    digest = hmac.new(bytes.fromhex(developer_key), customer, hashlib.sha256).digest()
    return base64.b64encode(digest + customer).decode("ascii")


class PartnerAuth:
    """Developer key and customer key: ``X-Un`` and ``X-Ci`` headers on every request, no login."""

    def __init__(self, username: str, developer_key: str, customer_key: str) -> None:
        if not username.strip() or not customer_key:
            raise KlickTippConfigError("PartnerAuth needs a username and a customer key")
        if any(char in username for char in "\r\n"):
            raise KlickTippConfigError("the username must not contain line breaks")
        self.username = username.strip()
        self._headers: Mapping[str, str] = MappingProxyType(
            {"X-Un": self.username, "X-Ci": partner_signature(developer_key, customer_key)}
        )

    def __repr__(self) -> str:
        return f"PartnerAuth(username={self.username!r}, developer_key=<redacted>, customer_key=<redacted>)"

    def headers(self, send: Send) -> Mapping[str, str]:
        return self._headers

    def reauthenticate(self, stale: Mapping[str, str]) -> bool:
        return False  # the same headers would be refused again

    def login(self, send: Send) -> None:
        return None

    def logout(self, send: Send) -> None:
        return None


ENV_USERNAME: Final = "KLICKTIPP_USERNAME"
ENV_PASSWORD: Final = "KLICKTIPP_PASSWORD"  # noqa: S105 - a variable name, not a password
ENV_DEVELOPER_KEY: Final = "KLICKTIPP_DEVELOPER_KEY"
ENV_CUSTOMER_KEY: Final = "KLICKTIPP_CUSTOMER_KEY"


def auth_from_env(env: Mapping[str, str]) -> Auth:
    """Partner auth when both keys are set, else session auth; ``KlickTippConfigError`` names what is missing."""

    def get(name: str) -> str:
        value = env.get(name, "")
        return value if value.strip() else ""

    username, password = get(ENV_USERNAME).strip(), get(ENV_PASSWORD)
    developer_key, customer_key = get(ENV_DEVELOPER_KEY).strip(), get(ENV_CUSTOMER_KEY).strip()
    if bool(developer_key) != bool(customer_key):
        # Half a partner configuration is a mistake, not a request for session mode.
        missing = ENV_CUSTOMER_KEY if developer_key else ENV_DEVELOPER_KEY
        raise KlickTippConfigError(f"{missing} is not set (partner auth needs both keys)")
    wanted = [ENV_USERNAME] if developer_key else [ENV_USERNAME, ENV_PASSWORD]
    missing_names = [name for name in wanted if not get(name)]
    if missing_names:
        raise KlickTippConfigError(f"{' and '.join(missing_names)} not set (needed for KlickTipp auth)")
    if developer_key:
        return PartnerAuth(username, developer_key, customer_key)
    return SessionAuth(username, password)
