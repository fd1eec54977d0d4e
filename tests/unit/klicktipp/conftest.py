"""Fixtures for the KlickTipp client's unit tests: a mocked wire (``responses``) and ready clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses

from ktsync.worker.klicktipp import KlickTippClient, PartnerAuth, SessionAuth

BASE = "https://api.klicktipp.com"
USERNAME = "demo-apiuser"
PASSWORD = "s3cret-Passw0rd!"
SESSION_NAME = "SSESS5bc3b84d3f2031474d7722e94851cff5"
SESSID = "nFnp4uLZCnc3dIEl9PrXgjoUuaJSyJIKpLyU9HH5rxw"
SESSID_2 = "second-session-id-after-relogin-0000000000"
DEVELOPER_KEY = "0123456789abcdef"
CUSTOMER_KEY = "customer-key"
X_CI = "cZkWFoPs3rLacJ4OpaooJMMOcb/fLxbZpeeOzJFCGh1jdXN0b21lci1rZXk="

SECRETS = (PASSWORD, SESSID, SESSID_2, DEVELOPER_KEY, CUSTOMER_KEY, X_CI)


def login_body(sessid: str = SESSID) -> dict[str, Any]:
    return {
        "sessid": sessid,
        "session_name": SESSION_NAME,
        "account": {"uid": "4711", "username": USERNAME, "email": "owner@shop.example", "tier": "premium"},
    }


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def add_login(rsps: responses.RequestsMock) -> Callable[..., None]:
    def add(sessid: str = SESSID, **kwargs: Any) -> None:
        rsps.add(responses.POST, f"{BASE}/account/login", json=login_body(sessid), **kwargs)

    return add


@pytest.fixture
def session_client() -> Iterator[KlickTippClient]:
    return KlickTippClient(SessionAuth(USERNAME, PASSWORD), session=requests.Session())


@pytest.fixture
def partner_client() -> Iterator[KlickTippClient]:
    return KlickTippClient(PartnerAuth(USERNAME, DEVELOPER_KEY, CUSTOMER_KEY), session=requests.Session())


def calls_to(mock: responses.RequestsMock, path: str) -> list[Any]:
    return [call for call in mock.calls if call.request.path_url.split("?")[0] == path]
