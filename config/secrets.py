"""Tenants' secrets: never stored in plain text, never printed.

A secret in a tenant's document is one of

* ``{env: NAME}``: a reference, read from the process environment of whoever needs it (the worker,
  the webhook receiver); nothing secret is stored at all;
* ``{encrypted: TOKEN}``: a Fernet token (AES-128-CBC with HMAC-SHA256), made from a plain value by
  ``ktsync tenant add|update`` with the key in ``KTSYNC_SECRET_KEY``; decrypted only in memory;
* a plain string: only in a file given to ``ktsync tenant add|update``, which encrypts it before it
  is stored. The config file refuses plain secrets.

``KTSYNC_SECRET_KEY`` holds one key or several, comma-separated: the first encrypts, every one
decrypts (rotation: put the new key first, ``ktsync tenant update`` each tenant, drop the old key).
``ktsync tenant key`` prints a new key. This is how Airflow keeps its connections (``fernet_key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ktsync.core.errors import KtsyncError

SECRET_KEY_ENV = "KTSYNC_SECRET_KEY"  # noqa: S105 - a variable's name


class SecretError(KtsyncError):
    """A secret cannot be stored or read: no key, a wrong key, an unset variable. Says which one."""

    reason = "config"


def new_key() -> str:
    """A fresh key for ``KTSYNC_SECRET_KEY``."""
    return Fernet.generate_key().decode()


class Keyring:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretError(f"{SECRET_KEY_ENV} is empty")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError):
            raise SecretError(
                f"{SECRET_KEY_ENV} must be one or more Fernet keys (32 url-safe base64-encoded bytes), "
                "comma-separated; `ktsync tenant key` prints a new one"
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Keyring | None:
        """The keyring of ``KTSYNC_SECRET_KEY``; None when it is not set."""
        raw = env.get(SECRET_KEY_ENV, "").strip()
        if not raw:
            return None
        return cls([part.strip() for part in raw.split(",") if part.strip()])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, *, what: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError(
                f"{what}: cannot be decrypted with {SECRET_KEY_ENV} (a different key encrypted it)"
            ) from None


@dataclass(frozen=True)
class Secret:
    """One value of a tenant's credentials: plain (not yet stored), a variable's name, or encrypted."""

    plain: str | None = None
    env: str | None = None
    encrypted: str | None = None

    def reveal(self, env: Mapping[str, str], keyring: Keyring | None, *, what: str) -> str:
        """The value, for use in memory only. ``what`` names it in errors (never the value)."""
        if self.plain is not None:
            return self.plain
        if self.env is not None:
            value = env.get(self.env, "").strip()
            if not value:
                raise SecretError(f"{what}: the environment variable {self.env} is not set")
            return value
        if keyring is None:
            raise SecretError(f"{what}: is encrypted, and {SECRET_KEY_ENV} is not set")
        return keyring.decrypt(self.encrypted or "", what=what)

    def sealed(self, keyring: Keyring | None, *, what: str) -> Secret:
        """The form to store: a plain value encrypted (an error without a key), the rest unchanged."""
        if self.plain is None:
            return self
        if keyring is None:
            raise SecretError(
                f"{what}: a plain secret is encrypted before it is stored, and {SECRET_KEY_ENV} is not set "
                "(`ktsync tenant key` prints a key; or reference a variable: {env: NAME})"
            )
        return Secret(encrypted=keyring.encrypt(self.plain))

    def to_json(self) -> str | dict[str, str]:
        if self.env is not None:
            return {"env": self.env}
        if self.encrypted is not None:
            return {"encrypted": self.encrypted}
        return self.plain or ""

    def shown(self) -> str:
        """How ``ktsync tenant show`` prints it: never the value."""
        if self.env is not None:
            return f"from ${self.env}"
        if self.encrypted is not None:
            return "encrypted"
        return "(plain, not stored)"
