"""Authenticated requests: add the credentials, and after a 401/403 log in again once and retry once.

That single re-login is the only retry inside the client; transient failures are for the caller (the
Celery layer) to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

from .auth import Auth
from .errors import AuthError
from .http import HttpClient, JSONBody
from .models import Account

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Requestor:
    """Joins the wire and an auth strategy."""

    def __init__(self, http: HttpClient, auth: Auth) -> None:
        self._http = http
        self._auth = auth

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[object], T],
        *,
        json: JSONBody | None = None,
        params: Mapping[str, str] | None = None,
    ) -> T:
        """Send with credentials; raise ``KlickTippError`` on failure (``AuthError`` after one re-login)."""
        headers = self._auth.headers(self._http.send)
        try:
            return self._http.send(operation, method, path, parse, json=json, params=params, headers=headers)
        except AuthError as exc:
            if not self._auth.reauthenticate(headers):
                raise
            logger.info("klicktipp %s got HTTP %s; logging in again and retrying once", operation, exc.status)
        headers = self._auth.headers(self._http.send)
        return self._http.send(operation, method, path, parse, json=json, params=params, headers=headers)

    def login(self) -> Account | None:
        return self._auth.login(self._http.send)

    def logout(self) -> None:
        self._auth.logout(self._http.send)

    def close(self) -> None:
        """Log out (best effort) and release the connection pool."""
        try:
            self._auth.logout(self._http.send)
        except Exception as exc:  # closing must not fail on a dead network or an expired session
            logger.warning("klicktipp logout on close failed: %s", exc)
        finally:
            self._http.close()
