"""The ``/_fake/*`` control endpoints for tests and demos (no KlickTipp auth, never logged or limited).

=============================== ==============================================================
``GET  /_fake/health``          ``{"status": "ok", "contacts": N, "accounts": A}`` (contacts of
                                every account)
``POST /_fake/reset``           optional JSON seed body (none: the start-up seed); back to the
                                start-up profile (``--profile``) with the seed's options on top;
                                also clears sessions, faults and the request log →
                                ``{"status": "reset", "profile": P}``
``GET  /_fake/state``           one account's contacts (with fields and tags), tags, lists, fields,
                                ``doi_emails``, and ``account`` (its name); ``?account=<name>``,
                                else the primary (the seed's first); fake-wide: ``sessions``
                                (count), ``faults``, ``options``, ``requests`` (count)
``GET  /_fake/accounts``        ``{"accounts": [{"username", "contacts": N, "primary": bool}, ...]}``
``POST /_fake/accounts``        ``{"accounts": [<seed account entry>, ...]}``: add accounts at run
                                time, each with data of its own: the last reset's seed data unless
                                the entry names its own (see ``fake_klicktipp.seed``); all or none
                                → ``{"added": [names], "accounts": A}``
``GET  /_fake/requests``        ``{"now": ts, "requests": [{ts, method, path, operation, status,
                                account, body, query}, ...]}``; ``?since=<ts>`` for newer ones only,
                                ``?account=<name>`` for one account's only
``DELETE /_fake/requests``      clear the request log → ``{"cleared": N}``
``GET|POST /_fake/faults``      partial update, see ``fake_klicktipp.faults`` → current settings
``GET|POST /_fake/options``     partial update, see ``fake_klicktipp.options`` → current options;
                                ``{"profile": "recorded"}`` (or ``"documented"``) applies that whole
                                preset first, the other keys of the same body then override it
``POST /_fake/sessions/invalidate``  drop every login session → ``{"invalidated": N}``
``POST /_fake/password``        ``{"username", "password"}``: the account's new password (its
                                sessions stay until invalidated) → ``{"changed": username}``
=============================== ==============================================================

Bad input answers 400 ``{"error": "<why>"}``; unknown endpoints 404.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

from fake_klicktipp.encoding import parse_query
from fake_klicktipp.fake import FakeKlickTipp
from fake_klicktipp.faults import faults_json
from fake_klicktipp.options import options_json
from fake_klicktipp.render import state_dump
from fake_klicktipp.seed import SeedError
from fake_klicktipp.wire import Reply, ok

CONTROL_PREFIX: Final = "/_fake/"
ControlHandler = Callable[[FakeKlickTipp, bytes, bytes], Reply]


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    decoded = json.loads(body)
    if not isinstance(decoded, dict):
        raise ValueError("the body must be a JSON object")
    return decoded


def _health(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    contacts = sum(len(data.state.contacts) for data in fake.accounts.values())
    return ok({"status": "ok", "contacts": contacts, "accounts": len(fake.accounts)})


def _reset(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    seed = _json_object(body)
    fake.reset(seed or None)
    return ok({"status": "reset", "profile": fake.options.profile})


def _account_arg(query: bytes) -> str | None:
    account = parse_query(query).get("account")
    if account is not None and not isinstance(account, str):
        raise ValueError("account must be one account name")
    return account or None


def _state(fake: FakeKlickTipp, query: bytes, _body: bytes) -> Reply:
    data = fake.account(_account_arg(query))
    dump = state_dump(data.state)
    dump["account"] = data.username
    dump["sessions"] = len(fake.sessions)
    dump["faults"] = faults_json(fake.faults.settings, time.monotonic())
    dump["options"] = options_json(fake.options)
    dump["requests"] = len(fake.log)
    return ok(dump)


def _requests(fake: FakeKlickTipp, query: bytes, _body: bytes) -> Reply:
    since, account = parse_query(query).get("since"), _account_arg(query)
    entries = fake.log.since(None if since in (None, "") else float(since))
    if account is not None:
        entries = [entry for entry in entries if entry.account == account]
    return ok({"now": time.time(), "requests": [entry.as_json() for entry in entries]})


def _accounts(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    listed = [
        {"username": name, "contacts": len(data.state.contacts), "primary": name == fake.primary}
        for name, data in fake.accounts.items()
    ]
    return ok({"accounts": listed})


def _add_accounts(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    added = fake.add_accounts(_json_object(body).get("accounts"))
    return ok({"added": added, "accounts": len(fake.accounts)})


def _clear_requests(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    count = len(fake.log)
    fake.log.clear()
    return ok({"cleared": count})


def _faults(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    now = time.monotonic()
    settings = fake.faults.configure(_json_object(body), now)
    return ok(faults_json(settings, now))


def _show_faults(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    return ok(faults_json(fake.faults.settings, time.monotonic()))


def _options(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    return ok(options_json(fake.configure(_json_object(body))))


def _show_options(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    return ok(options_json(fake.options))


def _invalidate(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    return ok({"invalidated": fake.sessions.clear()})


def _password(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    data = _json_object(body)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ValueError("needs username and password (strings)")
    fake.credentials.change_password(username, password)
    return ok({"changed": username})


_ROUTES: Final[dict[tuple[str, str], ControlHandler]] = {
    ("GET", "health"): _health,
    ("POST", "reset"): _reset,
    ("GET", "state"): _state,
    ("GET", "accounts"): _accounts,
    ("POST", "accounts"): _add_accounts,
    ("GET", "requests"): _requests,
    ("DELETE", "requests"): _clear_requests,
    ("GET", "faults"): _show_faults,
    ("POST", "faults"): _faults,
    ("GET", "options"): _show_options,
    ("POST", "options"): _options,
    ("POST", "sessions/invalidate"): _invalidate,
    ("POST", "password"): _password,
}


def handle_control(fake: FakeKlickTipp, method: str, path: str, query: bytes, body: bytes) -> Reply:
    """Answer one control request."""
    handler = _ROUTES.get((method, path.removeprefix(CONTROL_PREFIX).strip("/")))
    if handler is None:
        return Reply(404, {"error": f"no control endpoint {method} {path}"})
    try:
        return handler(fake, query, body)
    except (SeedError, ValueError, TypeError) as exc:
        return Reply(400, {"error": str(exc)})
