"""Secrets (password, keys, X-Ci, session id) never show in reprs, str(), exceptions or log output."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import requests
import responses

from ktsync.worker.klicktipp import (
    AuthError,
    KlickTippClient,
    KlickTippConfigError,
    KlickTippError,
    PartnerAuth,
    SessionAuth,
    auth_from_env,
)
from tests.unit.klicktipp.conftest import (
    BASE,
    CUSTOMER_KEY,
    DEVELOPER_KEY,
    PASSWORD,
    SECRETS,
    SESSID_2,
    USERNAME,
)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_reprs_and_strs_hide_secrets(rsps: responses.RequestsMock, add_login: Callable[..., None]) -> None:
    add_login()
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    session_auth = SessionAuth(USERNAME, PASSWORD)
    partner_auth = PartnerAuth(USERNAME, DEVELOPER_KEY, CUSTOMER_KEY)
    client = KlickTippClient(session_auth)
    client.tag_index()  # now holding a session

    for thing in (session_auth, partner_auth, client, session_auth._session, session_auth._account):
        assert_no_secret(repr(thing))
        assert_no_secret(str(thing))
    assert USERNAME in repr(session_auth)
    assert "logged in" in repr(session_auth)


def test_a_whole_session_leaves_no_secret_in_logs_or_errors(
    rsps: responses.RequestsMock, add_login: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    # Given DEBUG logging everywhere (urllib3 and requests included)
    caplog.set_level(logging.DEBUG)
    add_login()
    add_login(SESSID_2)
    rsps.add(responses.GET, f"{BASE}/tag", status=403, json=["API access denied."])
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    rsps.add(responses.POST, f"{BASE}/subscriber/tag", status=406, json={"error": 7})
    rsps.add(responses.POST, f"{BASE}/account/logout", status=500)
    errors: list[KlickTippError] = []
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD), session=requests.Session())

    # When it logs in, is refused, logs in again, fails a call and fails to log out
    client.tag_index()
    try:
        client.subscriber_tag("a@b.example", [1])
    except KlickTippError as exc:
        errors.append(exc)
    client.close()

    # Then no secret appears anywhere
    assert "logged in" in caplog.text
    assert_no_secret(caplog.text)
    for error in errors:
        assert_no_secret(str(error))
        assert_no_secret(repr(error))
        assert_no_secret(str(error.to_dict()))


def test_failed_login_errors_hide_the_password(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.POST, f"{BASE}/account/login", status=401, json=["Wrong username or password."])
    with pytest.raises(AuthError) as caught:
        KlickTippClient(SessionAuth(USERNAME, PASSWORD)).tag_index()
    assert_no_secret(str(caught.value) + repr(caught.value) + str(caught.value.to_dict()) + caplog.text)


def test_partner_requests_leave_no_secret_in_logs(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.GET, f"{BASE}/tag", status=401, json=["API access denied."])
    with pytest.raises(AuthError) as caught:
        KlickTippClient(PartnerAuth(USERNAME, DEVELOPER_KEY, CUSTOMER_KEY)).tag_index()
    assert_no_secret(str(caught.value) + str(caught.value.to_dict()) + caplog.text)


def test_config_errors_hide_secrets() -> None:
    for env in (
        {"KLICKTIPP_USERNAME": USERNAME, "KLICKTIPP_DEVELOPER_KEY": "nothex" + DEVELOPER_KEY,
         "KLICKTIPP_CUSTOMER_KEY": CUSTOMER_KEY},
        {"KLICKTIPP_PASSWORD": PASSWORD},
    ):  # fmt: skip
        with pytest.raises(KlickTippConfigError) as caught:
            auth_from_env(env)
        assert_no_secret(str(caught.value))
