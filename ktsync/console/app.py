"""The console's Starlette application: routes, the login, the session cookie, static files.

=====================================  ===========================================================
``GET  /``                             overview: lanes, per tenant budget, 429s, dead letters, charts
``GET  /dead-letters``                 groups by cause (meaning and fix), filters, entries
``GET  /dead-letters/{id}``            one letter in full: message, error, attempts, history
``POST /dead-letters/replay/preview``  what a replay would do (dry run)
``POST /dead-letters/replay``          replay (bulk lane, rate limiter)        operators
``POST /dead-letters/purge/preview``   what a purge would delete
``POST /dead-letters/purge``           purge                                   operators
``GET  /contacts``, ``POST /contacts/lookup``  a contact's state, timeline, dead letters
``POST /contacts/forget/preview``, ``POST /contacts/forget``  privacy deletion  operators
``GET  /review``, ``POST /review/done``        KlickTipp deletion requests        operators
``GET  /tenants``, ``GET /audit``, ``GET /runbook``
``GET  /login``, ``POST /login``, ``POST /logout``, ``GET /healthz`` (no authentication)
=====================================  ===========================================================
"""

from __future__ import annotations

import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ktsync.console import contacts, letters, pages
from ktsync.console.context import Console
from ktsync.console.frame import LOGIN_PATH, endpoint, identify, render_plain, secured, sign_in

SESSION_COOKIE = "ktsync_console"
SESSION_HOURS = 12
STATIC = Path(__file__).parent / "static"


async def login_page(request: Request) -> Response:
    console: Console = request.app.state.console
    if request.method == "GET":
        user, _nonce, _wrong = identify(request, console)
        if user is not None:
            return secured(RedirectResponse("/", status_code=303))
        return secured(_login_form(request, console))
    form = await request.form()
    nonce = request.session.get("login_nonce")
    given = form.get("csrf")
    if not isinstance(nonce, str) or not console.users.csrf_ok(
        "", nonce, given if isinstance(given, str) else None
    ):
        return secured(_login_form(request, console, "the login form expired: try again", status=400))
    name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
    user = console.users.check_password(name, password)
    if user is None:
        return secured(_login_form(request, console, "wrong user name or password", status=401))
    sign_in(request, user)
    return secured(RedirectResponse("/", status_code=303))


def _login_form(request: Request, console: Console, error: str = "", status: int = 200) -> Response:
    nonce = secrets.token_hex(16)
    request.session["login_nonce"] = nonce
    return render_plain(
        "login.html", status, csrf=console.users.csrf_token("", nonce), error=error,
        proxy=console.users.proxy_header,
    )  # fmt: skip


async def logout(request: Request) -> Response:
    console: Console = request.app.state.console
    user, nonce, _wrong = identify(request, console)
    form = await request.form()
    given = form.get("csrf")
    if user is not None and console.users.csrf_ok(
        user.name, nonce, given if isinstance(given, str) else None
    ):
        request.session.clear()
    return secured(RedirectResponse(LOGIN_PATH, status_code=303))


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def routes() -> list[Route | Mount]:
    return [
        Route("/", endpoint(pages.overview)),
        Route("/dead-letters", endpoint(letters.dead_letters)),
        Route("/dead-letters/replay/preview", endpoint(letters.replay_preview, act=True), methods=["POST"]),
        Route("/dead-letters/replay", endpoint(letters.replay, act=True), methods=["POST"]),
        Route("/dead-letters/purge/preview", endpoint(letters.purge_preview, act=True), methods=["POST"]),
        Route("/dead-letters/purge", endpoint(letters.purge, act=True), methods=["POST"]),
        Route("/dead-letters/{letter_id}", endpoint(letters.dead_letter)),
        Route("/contacts", endpoint(contacts.lookup_form)),
        Route("/contacts/lookup", endpoint(contacts.lookup), methods=["POST"]),
        Route("/contacts/forget/preview", endpoint(contacts.forget_preview, act=True), methods=["POST"]),
        Route("/contacts/forget", endpoint(contacts.forget, act=True), methods=["POST"]),
        Route("/review", endpoint(pages.review)),
        Route("/review/done", endpoint(pages.review_done, act=True), methods=["POST"]),
        Route("/tenants", endpoint(pages.tenants)),
        Route("/audit", endpoint(pages.audit)),
        Route("/runbook", endpoint(pages.runbook)),
        Route(LOGIN_PATH, login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def server_error(_request: Request, _exc: Exception) -> Response:
    """A failure the page did not foresee: a plain page (the traceback goes to the console's log)."""
    return secured(
        HTMLResponse(
            "<!doctype html><title>Error · ktsync console</title><h1>Something went wrong</h1>"
            "<p>The console's log has the details. <a href='/'>Back to the overview</a></p>",
            status_code=500,
        )
    )


def build_app(console: Console, *, secure_cookie: bool = False) -> Starlette:
    """The console for ``console``'s deployment. ``secure_cookie``: send the session cookie over HTTPS
    only (behind a TLS-terminating proxy)."""
    app = Starlette(
        routes=routes(),
        exception_handlers={500: server_error},
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=console.users.secret.hex(),
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_HOURS * 3600,
                same_site="strict",
                https_only=secure_cookie,
            )
        ],
    )
    app.state.console = console
    return app
