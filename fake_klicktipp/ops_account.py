"""The session operations: ``POST /account/login`` and ``POST /account/logout``."""

from __future__ import annotations

import time

from fake_klicktipp.accounts import AccountView
from fake_klicktipp.auth import SESSION_NAME
from fake_klicktipp.errors import Msg, Refused
from fake_klicktipp.wire import ApiRequest, Reply, ok


def _string(req: ApiRequest, key: str) -> str:
    value = req.body.get(key)
    if not isinstance(value, str):
        raise Refused(400, Msg.NOT_A_STRING, key=key)
    return value


def login(view: AccountView, req: ApiRequest) -> Reply:
    """Start a session: ``{sessid, session_name, account}`` plus the same cookie."""
    if req.sessid is not None:
        raise Refused(406, Msg.ALREADY_LOGGED_IN)
    account = view.credentials.login(_string(req, "username"), _string(req, "password"))
    if account is None:
        raise Refused(401, Msg.WRONG_LOGIN)
    session = view.sessions.create(account.username, time.monotonic())
    body = {"sessid": session.sessid, "session_name": SESSION_NAME, "account": dict(account.profile)}
    return ok(body, ("set-cookie", f"{SESSION_NAME}={session.sessid}; path=/; HttpOnly"))


def logout(view: AccountView, req: ApiRequest) -> Reply:
    """End the cookie's session: ``[true]``; 406 without a live session."""
    if req.sessid is None:
        raise Refused(406, Msg.NOT_LOGGED_IN)
    view.sessions.drop(req.sessid)
    expired = f"{SESSION_NAME}=deleted; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly"
    return ok([True], ("set-cookie", expired))
