"""Session auth (lazy login, reuse, one re-login, logout, thread safety) and partner auth (signed headers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from ktsync.worker.klicktipp import (
    AuthError,
    KlickTippClient,
    KlickTippConfigError,
    MalformedResponse,
    PartnerAuth,
    ServerError,
    SessionAuth,
    ValidationError,
    auth_from_env,
    partner_signature,
)
from tests.unit.klicktipp.conftest import (
    BASE,
    CUSTOMER_KEY,
    DEVELOPER_KEY,
    PASSWORD,
    SESSID,
    SESSID_2,
    SESSION_NAME,
    USERNAME,
    X_CI,
    calls_to,
    login_body,
)

COOKIE_1 = f"{SESSION_NAME}={SESSID}"
COOKIE_2 = f"{SESSION_NAME}={SESSID_2}"


# -- session auth ----------------------------------------------------------------------------------------


def test_login_is_lazy_and_the_cookie_is_built_from_the_body(
    rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    # Given a login answer whose Set-Cookie differs from its body (the body is authoritative)
    rsps.add(
        responses.POST,
        f"{BASE}/account/login",
        json=login_body(),
        headers={"Set-Cookie": f"{SESSION_NAME}=from-the-cookie-header; path=/; HttpOnly"},
    )
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    assert len(rsps.calls) == 0  # nothing sent on construction

    # When the first call is made
    session_client.tag_index()

    # Then it logged in first and sent the hand-built cookie
    assert [c.request.path_url for c in rsps.calls] == ["/account/login", "/tag"]
    assert rsps.calls[0].request.headers.get("Cookie") is None
    assert rsps.calls[1].request.headers["Cookie"] == COOKIE_1


def test_one_login_is_reused_across_calls(
    rsps: responses.RequestsMock, add_login: Callable[..., None]
) -> None:
    add_login()
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    rsps.add(responses.GET, f"{BASE}/field", json={})
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD))

    client.tag_index()
    client.field_index()
    client.tag_index()

    assert len(calls_to(rsps, "/account/login")) == 1
    assert {c.request.headers["Cookie"] for c in rsps.calls[1:]} == {COOKIE_1}


@pytest.mark.parametrize("status", [401, 403])
def test_an_expired_session_logs_in_again_once_and_retries_once(
    status: int, rsps: responses.RequestsMock, add_login: Callable[..., None], session_client: KlickTippClient
) -> None:
    # Given the session expires between two calls
    add_login(SESSID)
    add_login(SESSID_2)
    rsps.add(responses.GET, f"{BASE}/tag", json={"1": "a"})
    rsps.add(responses.GET, f"{BASE}/tag", status=status, json=["API access denied."])
    rsps.add(responses.GET, f"{BASE}/tag", json={"2": "b"})
    assert session_client.tag_index() == {"1": "a"}

    # When the next call is refused
    result = session_client.tag_index()

    # Then the client logged in again and retried with the new cookie
    assert result == {"2": "b"}
    paths = [c.request.path_url for c in rsps.calls]
    assert paths == ["/account/login", "/tag", "/tag", "/account/login", "/tag"]
    assert rsps.calls[2].request.headers["Cookie"] == COOKIE_1
    assert rsps.calls[3].request.headers.get("Cookie") is None  # no stale cookie replayed by a jar
    assert rsps.calls[4].request.headers["Cookie"] == COOKIE_2


@pytest.mark.parametrize("status", [401, 403])
def test_a_second_refusal_raises_auth_error_without_looping(
    status: int, rsps: responses.RequestsMock, add_login: Callable[..., None], session_client: KlickTippClient
) -> None:
    add_login(SESSID)
    add_login(SESSID_2)
    rsps.add(responses.GET, f"{BASE}/tag", status=status, json=["API access denied."])

    with pytest.raises(AuthError) as caught:
        session_client.tag_index()

    assert caught.value.status == status
    assert caught.value.operation == "api.tag.index"
    assert [c.request.path_url for c in rsps.calls] == ["/account/login", "/tag", "/account/login", "/tag"]


def test_wrong_credentials_raise_auth_error_after_one_login(
    rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/account/login", status=401, json=["Wrong username or password."])

    with pytest.raises(AuthError) as caught:
        session_client.tag_index()

    assert caught.value.operation == "api.account.login"
    assert len(rsps.calls) == 1


def test_a_failed_login_is_tried_again_on_the_next_call(
    rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/account/login", status=503)
    rsps.add(responses.POST, f"{BASE}/account/login", json=login_body())
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    with pytest.raises(ServerError):
        session_client.tag_index()
    assert session_client.tag_index() == {}


def test_business_errors_do_not_trigger_a_login(
    rsps: responses.RequestsMock, add_login: Callable[..., None], session_client: KlickTippClient
) -> None:
    add_login()
    rsps.add(responses.POST, f"{BASE}/subscriber", status=401, json={"error": 32})
    with pytest.raises(ValidationError) as caught:
        session_client.subscriber_create(email="a@b.example", listid=1)
    assert (caught.value.status, caught.value.error) == (401, 32)
    assert len(calls_to(rsps, "/account/login")) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"session_name": SESSION_NAME},
        {"sessid": SESSID},
        {"sessid": "abc; Path=/", "session_name": SESSION_NAME},
        {"sessid": SESSID, "session_name": "SSESS x\r\nX-Evil: 1"},
        ["not", "an", "object"],
    ],
)
def test_a_login_answer_without_a_usable_session_is_malformed(
    answer: Any, rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/account/login", json=answer)
    with pytest.raises(MalformedResponse) as caught:
        session_client.tag_index()
    assert caught.value.operation == "api.account.login"
    assert SESSID not in str(caught.value)
    assert "abc" not in str(caught.value)


def test_close_logs_out_once(rsps: responses.RequestsMock, add_login: Callable[..., None]) -> None:
    add_login()
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    rsps.add(responses.POST, f"{BASE}/account/logout", json=[True])

    with KlickTippClient(SessionAuth(USERNAME, PASSWORD), session=requests.Session()) as client:
        client.tag_index()

    logout = calls_to(rsps, "/account/logout")
    assert len(logout) == 1
    assert logout[0].request.headers["Cookie"] == COOKIE_1


def test_close_without_a_session_sends_nothing(
    rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    session_client.close()
    assert len(rsps.calls) == 0


def test_close_survives_a_failed_logout(
    rsps: responses.RequestsMock, add_login: Callable[..., None], session_client: KlickTippClient
) -> None:
    add_login()
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    rsps.add(responses.POST, f"{BASE}/account/logout", status=406, json=["Benutzer nicht eingeloggt."])
    session_client.tag_index()
    session_client.close()  # does not raise


def test_after_logout_the_next_call_logs_in_again(
    rsps: responses.RequestsMock, add_login: Callable[..., None], session_client: KlickTippClient
) -> None:
    add_login(SESSID)
    add_login(SESSID_2)
    rsps.add(responses.POST, f"{BASE}/account/logout", json=[True])
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    session_client.tag_index()
    session_client.logout()
    session_client.tag_index()
    assert [c.request.path_url for c in rsps.calls] == [
        "/account/login", "/tag", "/account/logout", "/account/login", "/tag",
    ]  # fmt: skip
    assert rsps.calls[-1].request.headers["Cookie"] == COOKIE_2


def test_many_threads_share_one_login(rsps: responses.RequestsMock) -> None:
    # Given a slow login, so that every thread arrives while it is in flight
    def slow_login(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        time.sleep(0.1)
        return 200, {}, __import__("json").dumps(login_body())

    rsps.add_callback(responses.POST, f"{BASE}/account/login", callback=slow_login)
    rsps.add(responses.GET, f"{BASE}/tag", json={"21": "t"})
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD))
    results: list[dict[str, str]] = []
    start = threading.Barrier(16)

    def work() -> None:
        start.wait()
        results.append(client.tag_index())

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [{"21": "t"}] * 16
    assert len(calls_to(rsps, "/account/login")) == 1
    assert len(calls_to(rsps, "/tag")) == 16


def test_a_stale_refusal_does_not_drop_a_newer_session() -> None:
    # Given two threads used session 1; thread A got 403 and already logged in again (session 2)
    answers = iter([login_body(SESSID), login_body(SESSID_2)])
    sent: list[str] = []

    def send(operation: str, method: str, path: str, parse: Callable[[object], Any], **kwargs: Any) -> Any:
        sent.append(operation)
        return parse(next(answers))

    auth = SessionAuth(USERNAME, PASSWORD)
    stale = auth.headers(send)
    assert auth.reauthenticate(stale)
    fresh = auth.headers(send)

    # When thread B reports its 403 for session 1 late
    assert auth.reauthenticate(stale)

    # Then session 2 is kept and no third login happens
    assert auth.headers(send) == fresh == {"Cookie": COOKIE_2}
    assert sent == ["api.account.login", "api.account.login"]


# -- partner auth ----------------------------------------------------------------------------------------


def test_partner_signature_matches_the_vendor_test_vector() -> None:
    assert partner_signature(DEVELOPER_KEY, CUSTOMER_KEY) == X_CI
    assert partner_signature(DEVELOPER_KEY.upper(), CUSTOMER_KEY) == X_CI


def test_partner_headers_go_on_every_request_without_login(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    rsps.add(responses.POST, f"{BASE}/subscriber/search", json=[1])

    partner_client.tag_index()
    partner_client.subscriber_search("a@b.example")
    partner_client.close()

    assert [c.request.path_url for c in rsps.calls] == ["/tag", "/subscriber/search"]
    for call in rsps.calls:
        assert call.request.headers["X-Un"] == USERNAME
        assert call.request.headers["X-Ci"] == X_CI
        assert "Cookie" not in call.request.headers


@pytest.mark.parametrize("status", [401, 403])
def test_partner_auth_refused_is_not_retried(
    status: int, rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", status=status, json=["API access denied."])
    with pytest.raises(AuthError):
        partner_client.tag_index()
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "pasted", [DEVELOPER_KEY.upper(), f"  {DEVELOPER_KEY}\n", "0123 4567 89ab cdef", "01234567\n89ABCDEF\t"]
)
def test_the_developer_key_is_normalised_like_klicktipps_own_client(pasted: str) -> None:
    # Given a developer key pasted in upper case, in groups or across lines (klicktipp-mcp auth.js
    # strips every whitespace and lower-cases), Then the signature is the test vector's
    assert DEVELOPER_KEY == "0123456789abcdef"
    assert PartnerAuth(USERNAME, pasted, CUSTOMER_KEY).headers(_no_send)["X-Ci"] == X_CI


def _no_send(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("partner auth sends nothing to sign")


@pytest.mark.parametrize("developer_key", ["0123456789abcde", "xyz0", "", "01 2"])
def test_the_developer_key_must_be_even_length_hex(developer_key: str) -> None:
    with pytest.raises(KlickTippConfigError, match="even-length hex") as caught:
        PartnerAuth(USERNAME, developer_key, CUSTOMER_KEY)
    if developer_key:
        assert developer_key not in str(caught.value)


# -- configuration from the environment ------------------------------------------------------------------

PARTNER_ENV = {
    "KLICKTIPP_USERNAME": USERNAME,
    "KLICKTIPP_DEVELOPER_KEY": DEVELOPER_KEY,
    "KLICKTIPP_CUSTOMER_KEY": CUSTOMER_KEY,
}
SESSION_ENV = {"KLICKTIPP_USERNAME": USERNAME, "KLICKTIPP_PASSWORD": PASSWORD}


def test_auth_from_env_prefers_partner_auth_when_both_keys_are_set() -> None:
    auth = auth_from_env({**SESSION_ENV, **PARTNER_ENV})
    assert isinstance(auth, PartnerAuth)
    assert auth.headers(send=None) == {"X-Un": USERNAME, "X-Ci": X_CI}  # type: ignore[arg-type]


def test_auth_from_env_falls_back_to_session_auth() -> None:
    auth = auth_from_env({**SESSION_ENV, "KLICKTIPP_DEVELOPER_KEY": " ", "KLICKTIPP_CUSTOMER_KEY": ""})
    assert isinstance(auth, SessionAuth)
    assert auth.username == USERNAME


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "KLICKTIPP_USERNAME and KLICKTIPP_PASSWORD"),
        ({"KLICKTIPP_USERNAME": USERNAME}, "KLICKTIPP_PASSWORD"),
        ({"KLICKTIPP_PASSWORD": PASSWORD}, "KLICKTIPP_USERNAME"),
        ({"KLICKTIPP_USERNAME": "  ", "KLICKTIPP_PASSWORD": PASSWORD}, "KLICKTIPP_USERNAME"),
        ({**PARTNER_ENV, "KLICKTIPP_USERNAME": ""}, "KLICKTIPP_USERNAME"),
        ({**SESSION_ENV, "KLICKTIPP_DEVELOPER_KEY": DEVELOPER_KEY}, "KLICKTIPP_CUSTOMER_KEY"),
        ({**SESSION_ENV, "KLICKTIPP_CUSTOMER_KEY": CUSTOMER_KEY}, "KLICKTIPP_DEVELOPER_KEY"),
    ],
)
def test_auth_from_env_names_what_is_missing(env: dict[str, str], missing: str) -> None:
    with pytest.raises(KlickTippConfigError, match=missing) as caught:
        auth_from_env(env)
    for secret in (PASSWORD, DEVELOPER_KEY, CUSTOMER_KEY):
        assert secret not in str(caught.value)


def test_client_from_env_reads_the_base_url(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, "https://kt.internal.example/api/tag", json={})
    client = KlickTippClient.from_env(
        {**PARTNER_ENV, "KLICKTIPP_BASE_URL": "https://kt.internal.example/api/"}
    )
    client.tag_index()
    assert rsps.calls[0].request.url == "https://kt.internal.example/api/tag"


def test_client_from_env_defaults_to_the_production_host(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    KlickTippClient.from_env(PARTNER_ENV).tag_index()
    assert rsps.calls[0].request.url == f"{BASE}/tag"


def test_client_from_env_rejects_a_base_url_without_scheme() -> None:
    with pytest.raises(KlickTippConfigError, match="KLICKTIPP_BASE_URL"):
        KlickTippClient.from_env({**PARTNER_ENV, "KLICKTIPP_BASE_URL": "api.klicktipp.com"})
