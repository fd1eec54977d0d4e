"""Who may use the console, in which role, and the CSRF tokens of their forms. Pure.

Users come from the environment, in Flower's ``--basic-auth`` format (``user:password,user2:password2``):

* ``KTSYNC_CONSOLE_AUTH``     operators: everything, including replay, purge, forget and review "done"
* ``KTSYNC_CONSOLE_VIEWERS``  read-only users: every page, no action
* ``KTSYNC_CONSOLE_PROXY_HEADER``    trust a reverse proxy that authenticates and names the user in this
  header (e.g. ``X-Forwarded-User``); ``KTSYNC_CONSOLE_PROXY_OPERATORS`` (comma-separated names) are the
  operators among them, every other named user is read-only. Only for a console that nothing but the
  proxy can reach.
* ``KTSYNC_CONSOLE_SECRET``   the key that signs session cookies and CSRF tokens (default: random at
  each start, so a restart logs everybody out)

A CSRF token is an HMAC of the user and the session's nonce under the secret: a page of another site
cannot know it, and every state-changing request must carry it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ktsync.core.errors import KtsyncError

AUTH_ENV = "KTSYNC_CONSOLE_AUTH"
VIEWERS_ENV = "KTSYNC_CONSOLE_VIEWERS"
PROXY_HEADER_ENV = "KTSYNC_CONSOLE_PROXY_HEADER"
PROXY_OPERATORS_ENV = "KTSYNC_CONSOLE_PROXY_OPERATORS"
SECRET_ENV = "KTSYNC_CONSOLE_SECRET"  # noqa: S105 (the variable's name)
MIN_PASSWORD = 8


class Role(Enum):
    OPERATOR = "operator"
    VIEWER = "read-only"


class ConsoleAuthError(KtsyncError, ValueError):
    """The console's users are configured wrongly (names the variable and why)."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True)
class Users:
    """The console's users and how they authenticate."""

    passwords: Mapping[str, tuple[str, Role]] = field(default_factory=dict)
    proxy_header: str | None = None
    proxy_operators: frozenset[str] = frozenset()
    secret: bytes = b""

    @property
    def configured(self) -> bool:
        return bool(self.passwords) or self.proxy_header is not None

    def check_password(self, name: str, password: str) -> User | None:
        """The user, when the password is right (compared in constant time, also for unknown names)."""
        known = self.passwords.get(name)
        expected = known[0] if known else secrets.token_hex(16)
        ok = hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))
        return User(name, known[1]) if ok and known else None

    def role_of(self, name: str) -> Role | None:
        """The role of a user a session names (None: no longer configured)."""
        known = self.passwords.get(name)
        if known is not None:
            return known[1]
        if self.proxy_header is not None:
            return Role.OPERATOR if name in self.proxy_operators else Role.VIEWER
        return None

    def from_proxy(self, headers: Mapping[str, str]) -> User | None:
        """The user a trusted reverse proxy names, when that is how the console authenticates."""
        if self.proxy_header is None:
            return None
        name = headers.get(self.proxy_header.lower(), "").strip()
        if not name:
            return None
        return User(name, Role.OPERATOR if name in self.proxy_operators else Role.VIEWER)

    def csrf_token(self, user: str, nonce: str) -> str:
        message = f"csrf\x1f{user}\x1f{nonce}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def csrf_ok(self, user: str, nonce: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf_token(user, nonce), given)


def parse_accounts(value: str, variable: str, role: Role) -> dict[str, tuple[str, Role]]:
    """``user:password,user2:password2`` (a password may contain ``:``, a name may not)."""
    accounts: dict[str, tuple[str, Role]] = {}
    for number, item in enumerate(value.split(","), 1):
        item = item.strip()
        if not item:
            continue
        name, sep, password = item.partition(":")
        name = name.strip()
        if not sep or not name:
            raise ConsoleAuthError(f"{variable}: entry {number} is not user:password")
        if len(password) < MIN_PASSWORD:
            raise ConsoleAuthError(f"{variable}: the password of {name!r} is shorter than {MIN_PASSWORD}")
        if name in accounts:
            raise ConsoleAuthError(f"{variable}: {name!r} is given twice")
        accounts[name] = (password, role)
    return accounts


def users_from_env(env: Mapping[str, str]) -> Users:
    """The users the environment configures (see the module); ConsoleAuthError names what is wrong."""
    operators = parse_accounts(env.get(AUTH_ENV, ""), AUTH_ENV, Role.OPERATOR)
    viewers = parse_accounts(env.get(VIEWERS_ENV, ""), VIEWERS_ENV, Role.VIEWER)
    both = sorted(set(operators) & set(viewers))
    if both:
        raise ConsoleAuthError(f"{', '.join(both)}: in both {AUTH_ENV} and {VIEWERS_ENV}")
    header = env.get(PROXY_HEADER_ENV, "").strip() or None
    proxy_operators = frozenset(
        name.strip() for name in env.get(PROXY_OPERATORS_ENV, "").split(",") if name.strip()
    )
    if proxy_operators and header is None:
        raise ConsoleAuthError(f"{PROXY_OPERATORS_ENV} is set but {PROXY_HEADER_ENV} is not")
    secret = env.get(SECRET_ENV, "")
    if secret and len(secret) < 16:
        raise ConsoleAuthError(f"{SECRET_ENV}: at least 16 characters")
    users = Users(
        passwords={**operators, **viewers},
        proxy_header=header,
        proxy_operators=proxy_operators,
        secret=secret.encode("utf-8") if secret else secrets.token_bytes(32),
    )
    if not users.configured:
        raise ConsoleAuthError(
            f"the console serves nobody without authentication: set {AUTH_ENV} (operators, "
            f"user:password,...), optionally {VIEWERS_ENV} (read-only), or {PROXY_HEADER_ENV} behind an "
            "authenticating reverse proxy"
        )
    return users
