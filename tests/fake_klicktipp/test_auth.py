"""Partner signature, session cookies and session expiry."""

from __future__ import annotations

from fake_klicktipp.auth import SESSION_NAME, Credentials, Sessions, partner_signature, session_cookie
from fake_klicktipp.model import Account

DEMO = Account("demo", "demo-secret", "0123456789abcdef", "customer-key", {})


def test_partner_signature_matches_the_published_test_vector():
    assert (
        partner_signature("0123456789abcdef", "customer-key")
        == "cZkWFoPs3rLacJ4OpaooJMMOcb/fLxbZpeeOzJFCGh1jdXN0b21lci1rZXk="
    )


def test_partner_headers_identify_the_account():
    credentials = Credentials([DEMO])
    headers = {"x-un": "demo", "x-ci": partner_signature("0123456789abcdef", "customer-key")}
    identity = credentials.partner(headers)
    assert identity is not None
    assert (identity.username, identity.via) == ("demo", "partner")


def test_wrong_customer_key_or_user_is_refused():
    credentials = Credentials([DEMO])
    assert (
        credentials.partner({"x-un": "demo", "x-ci": partner_signature("0123456789abcdef", "other")}) is None
    )
    assert (
        credentials.partner({"x-un": "nobody", "x-ci": partner_signature("0123456789abcdef", "customer-key")})
        is None
    )
    assert credentials.partner({}) is None


def test_login_checks_the_password():
    credentials = Credentials([DEMO])
    assert credentials.login("demo", "demo-secret") == DEMO
    assert credentials.login("demo", "wrong") is None
    assert credentials.login("ghost", "demo-secret") is None


def test_session_name_is_drupal_style():
    assert SESSION_NAME.startswith("SSESS")
    assert len(SESSION_NAME) == 5 + 32


def test_session_cookie_is_found_among_others():
    assert session_cookie(f"a=1; {SESSION_NAME}=abc; b=2") == "abc"
    assert session_cookie("PHPSESSID=abc") is None


def test_sessions_expire_after_the_ttl():
    sessions = Sessions()
    session = sessions.create("demo", now=100.0)
    assert len(session.sessid) == 43
    assert sessions.lookup(session.sessid, now=159.0, ttl=60) == session
    assert sessions.lookup(session.sessid, now=160.0, ttl=60) is None
    assert len(sessions) == 0


def test_sessions_live_forever_without_ttl_until_cleared():
    sessions = Sessions()
    session = sessions.create("demo", now=0.0)
    assert sessions.lookup(session.sessid, now=1e9, ttl=None) == session
    assert sessions.clear() == 1
    assert sessions.lookup(session.sessid, now=0.0, ttl=None) is None
