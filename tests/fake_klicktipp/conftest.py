"""Fixtures: one fake server process for the whole session, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fake_klicktipp.testing import FakeControl, RunningFake, partner_headers, running_fake


class Api:
    """A requests session against the fake's API, with paths relative to the base URL."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}{path}", timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self("DELETE", path, **kwargs)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[RunningFake]:
    with running_fake() as fake:
        yield fake


@pytest.fixture
def control(fake_server: RunningFake) -> FakeControl:
    """The control client, after a reset to the default seed (also clears faults and the log)."""
    fake_server.control.reset()
    return fake_server.control


@pytest.fixture
def api(fake_server: RunningFake, control: FakeControl) -> Api:
    """An API client authenticated with the demo partner headers."""
    return Api(fake_server.base_url, partner_headers())


@pytest.fixture
def anonymous(fake_server: RunningFake, control: FakeControl) -> Api:
    """An API client without credentials."""
    return Api(fake_server.base_url)
