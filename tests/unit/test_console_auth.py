"""Who may use the console and how: users from the environment, roles, proxy users, CSRF tokens."""

from __future__ import annotations

import pytest

from ktsync.console.auth import (
    AUTH_ENV,
    PROXY_HEADER_ENV,
    PROXY_OPERATORS_ENV,
    SECRET_ENV,
    VIEWERS_ENV,
    ConsoleAuthError,
    Role,
    User,
    users_from_env,
)
from ktsync.console.charts import sparkline

BOTH = {AUTH_ENV: "alice:alice-pass-1,bob:b:ob-pass-2", VIEWERS_ENV: "carol:carol-pass"}


def test_operators_and_read_only_users_with_their_passwords() -> None:
    users = users_from_env(BOTH)
    assert users.check_password("alice", "alice-pass-1") == User("alice", Role.OPERATOR)
    assert users.check_password("bob", "b:ob-pass-2") == User("bob", Role.OPERATOR)  # ':' in a password
    assert users.check_password("carol", "carol-pass") == User("carol", Role.VIEWER)
    assert not users.check_password("carol", "carol-pass").may_act  # type: ignore[union-attr]
    assert users.check_password("alice", "carol-pass") is None
    assert users.check_password("mallory", "alice-pass-1") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "serves nobody without authentication"),
        ({AUTH_ENV: "alice"}, f"{AUTH_ENV}: entry 1 is not user:password"),
        ({AUTH_ENV: "alice:short"}, "the password of 'alice' is shorter than 8"),
        ({AUTH_ENV: "a:aaaaaaaa,a:bbbbbbbb"}, "'a' is given twice"),
        ({AUTH_ENV: "a:aaaaaaaa", VIEWERS_ENV: "a:bbbbbbbb"}, f"a: in both {AUTH_ENV} and {VIEWERS_ENV}"),
        ({AUTH_ENV: "a:aaaaaaaa", SECRET_ENV: "short"}, f"{SECRET_ENV}: at least 16 characters"),
        ({PROXY_OPERATORS_ENV: "alice"}, f"{PROXY_HEADER_ENV} is not"),
    ],
)
def test_a_wrong_setting_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConsoleAuthError, match=message.replace("(", r"\(")):
        users_from_env(env)


def test_behind_a_proxy_its_header_names_the_user_and_only_listed_operators_may_act() -> None:
    users = users_from_env({PROXY_HEADER_ENV: "X-Forwarded-User", PROXY_OPERATORS_ENV: "alice"})
    assert users.from_proxy({"x-forwarded-user": "alice"}) == User("alice", Role.OPERATOR)
    assert users.from_proxy({"x-forwarded-user": "dave"}) == User("dave", Role.VIEWER)
    assert users.from_proxy({}) is None
    assert users_from_env(BOTH).from_proxy({"x-forwarded-user": "alice"}) is None  # not trusted unless set


def test_csrf_tokens_are_bound_to_the_user_the_session_and_the_secret() -> None:
    users = users_from_env({**BOTH, SECRET_ENV: "s" * 32})
    token = users.csrf_token("alice", "nonce-1")
    assert users.csrf_ok("alice", "nonce-1", token)
    assert not users.csrf_ok("bob", "nonce-1", token)
    assert not users.csrf_ok("alice", "nonce-2", token)
    assert not users.csrf_ok("alice", "nonce-1", None)
    assert not users_from_env({**BOTH, SECRET_ENV: "t" * 32}).csrf_ok("alice", "nonce-1", token)
    assert users_from_env(BOTH).secret != users_from_env(BOTH).secret  # random per start by default


def test_a_sparkline_scales_to_its_maximum_and_says_the_latest_value() -> None:
    svg = sparkline([0.0, 2.0, None, 4.0], label="live calls/s", unit="/s")
    assert svg.startswith('<svg class="chart"')
    assert "now 4/s, max 4/s" in svg
    points = svg.split('points="', 1)[1].split('"', 1)[0].split()
    assert len(points) == 3
    assert points[-1].endswith(",2.0")
    assert "now -" in sparkline([None, None], label="x")
    assert "&lt;b&gt;" in sparkline([1.0], label="<b>")  # labels are escaped
