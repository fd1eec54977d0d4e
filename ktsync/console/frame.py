"""What every console page shares: who is asking, the CSRF check, the templates, security headers.

A page handler is a plain function ``(Page) -> Response`` run on Starlette's thread pool (it reads
Redis and may call KlickTipp: blocking work). :func:`endpoint` wraps it: it authenticates (session
cookie, HTTP Basic or a trusted proxy header), checks the CSRF token of every POST, refuses actions to
read-only users, and sets the security headers. Nothing personal goes into a URL: forms that carry an
address are POSTed.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ktsync.console.auth import Role, User
from ktsync.console.context import Console

LOGIN_PATH = "/login"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
Handler = Callable[["Page"], Response]

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("ktsync.console", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_templates.filters["when"] = when
_templates.filters["ago"] = ago
_templates.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@dataclass
class Page:
    """One request as a handler sees it."""

    request: Request
    console: Console
    user: User
    csrf: str
    form: FormData | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def arg(self, name: str) -> str:
        """A query or form value ('' when absent), stripped."""
        if self.form is not None and name in self.form:
            return str(self.form.get(name) or "").strip()
        return self.request.query_params.get(name, "").strip()

    def args(self, name: str) -> list[str]:
        values = self.form.getlist(name) if self.form is not None else []
        return [str(v).strip() for v in values if str(v).strip()]

    def flash(self, kind: str, text: str) -> None:
        self.flashes.append((kind, text))

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = _templates.get_template(template).render(
            user=self.user, csrf=self.csrf, flashes=self.flashes, path=self.request.url.path, **context
        )
        return HTMLResponse(body, status_code=status)

    def forbidden(self, why: str) -> HTMLResponse:
        return self.render("forbidden.html", status=403, why=why)


def render_plain(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page without a signed-in user (the login page)."""
    return HTMLResponse(_templates.get_template(template).render(**context), status_code=status)


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _basic(headers: Mapping[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        name, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


def identify(request: Request, console: Console) -> tuple[User | None, str, bool]:
    """The user, the nonce their CSRF tokens are bound to, and whether wrong credentials were sent."""
    users = console.users
    proxied = users.from_proxy(request.headers)
    if proxied is not None:
        return proxied, "proxy", False
    basic = _basic(request.headers)
    if basic is not None:
        user = users.check_password(*basic)
        return user, "basic", user is None
    name, nonce = request.session.get("user"), request.session.get("nonce")
    if isinstance(name, str) and isinstance(nonce, str):
        role = users.role_of(name)
        if role is not None:
            return User(name, role), nonce, False
    return None, "", False


def sign_in(request: Request, user: User) -> None:
    request.session.clear()
    request.session.update({"user": user.name, "nonce": secrets.token_hex(16)})


def endpoint(handler: Handler, *, act: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint around ``handler``; ``act``: a state-changing action (operators only)."""

    async def run(request: Request) -> Response:
        console: Console = request.app.state.console
        user, nonce, wrong = identify(request, console)
        if user is None:
            if wrong or request.method != "GET":
                return secured(
                    Response("authentication required\n", 401, {"www-authenticate": 'Basic realm="ktsync"'})
                )
            return secured(RedirectResponse(LOGIN_PATH, status_code=303))
        csrf = console.users.csrf_token(user.name, nonce)
        form = await request.form() if request.method == "POST" else None
        page = Page(request, console, user, csrf, form)
        page.flashes.extend(request.session.pop("flash", []) if nonce not in ("basic", "proxy") else [])
        if form is not None:
            given = form.get("csrf")
            if not console.users.csrf_ok(user.name, nonce, given if isinstance(given, str) else None):
                return secured(page.forbidden("the form's CSRF token is missing or wrong: reload the page"))
            if act and user.role is not Role.OPERATOR:
                return secured(
                    page.forbidden("read-only users cannot replay, purge, erase or change anything")
                )
        return secured(await run_in_threadpool(handler, page))

    return run
