"""The ``/_fake/*`` control endpoints for tests and demos (no KlickTipp auth, never logged or limited).

=============================== ==============================================================
``GET  /_fake/health``          ``{"status": "ok", "contacts": N}``
``POST /_fake/reset``           optional JSON seed body (none: the start-up seed); back to the
                                start-up profile (``--profile``) with the seed's options on top;
                                also clears sessions, faults and the request log →
                                ``{"status": "reset", "profile": P}``
``GET  /_fake/state``           contacts (with fields and tags), tags, lists, fields, ``doi_emails``,
                                ``sessions`` (count), ``faults``, ``options``, ``requests`` (count)
``GET  /_fake/requests``        ``{"now": ts, "requests": [{ts, method, path, operation, status,
                                account, body, query}, ...]}``; ``?since=<ts>`` for newer ones only
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
    return ok({"status": "ok", "contacts": len(fake.state.contacts)})


def _reset(fake: FakeKlickTipp, _query: bytes, body: bytes) -> Reply:
    seed = _json_object(body)
    fake.reset(seed or None)
    return ok({"status": "reset", "profile": fake.options.profile})


def _state(fake: FakeKlickTipp, _query: bytes, _body: bytes) -> Reply:
    dump = state_dump(fake.state)
    dump["sessions"] = len(fake.sessions)
    dump["faults"] = faults_json(fake.faults.settings, time.monotonic())
    dump["options"] = options_json(fake.options)
    dump["requests"] = len(fake.log)
    return ok(dump)


def _requests(fake: FakeKlickTipp, query: bytes, _body: bytes) -> Reply:
    since = parse_query(query).get("since")
    entries = fake.log.since(None if since in (None, "") else float(since))
    return ok({"now": time.time(), "requests": [entry.as_json() for entry in entries]})


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
