"""The console served over real HTTP on loopback (uvicorn in a thread), and a signed-in client."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
import requests

from ktsync.config.settings import Settings
from ktsync.console.app import build_app
from ktsync.console.audit import RedisAuditLog
from ktsync.console.auth import AUTH_ENV, VIEWERS_ENV, users_from_env
from ktsync.console.context import Console
from ktsync.core.web import in_thread, uvicorn_config

OPERATOR = ("op", "op-secret-1")
VIEWER = ("viewer", "viewer-secret-1")
USERS_ENV = {AUTH_ENV: ":".join(OPERATOR), VIEWERS_ENV: ":".join(VIEWER)}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def console_of(settings: Settings, client: redis.Redis, env: Mapping[str, str], **users: str) -> Console:
    """A console of the test's deployment; ``users``: the console's user variables (default two users)."""
    return Console(
        settings=settings,
        client=client,
        env={**env, **(users or USERS_ENV)},
        users=users_from_env(users or USERS_ENV),
        audit=RedisAuditLog(client, settings.deployment_prefix),
    )


@contextmanager
def serving(console: Console) -> Iterator[str]:
    """The console's base URL while it listens on a free loopback port."""
    config = uvicorn_config(
        build_app(console), host="127.0.0.1", port=0, log_level="warning", log_config=None
    )
    with in_thread(config, "console-under-test") as url:
        yield url


class Client:
    """A browser-like session: follows redirects, keeps the cookie, sends the last page's CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self._seen(self.http.get(self.base + path, timeout=30, **kwargs))

    def post(self, path: str, data: Any = None, *, csrf: bool = True, **kwargs: Any) -> requests.Response:
        fields = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            fields.append(("csrf", self.token))
        return self._seen(self.http.post(self.base + path, data=fields, timeout=60, **kwargs))

    def login(self, user: tuple[str, str] = OPERATOR) -> requests.Response:
        self.get("/login")
        return self.post("/login", {"username": user[0], "password": user[1]})

    def _seen(self, response: requests.Response) -> requests.Response:
        found = CSRF.search(response.text)
        if found:
            self.token = found.group(1)
        return response
