"""Fixtures: the fake CRM over loopback (one process per session, reset per test) and a mocked wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from fake_crm.testing import FakeCrmControl, RunningFakeCrm, running_fake_crm


@pytest.fixture(scope="session")
def fake_crm_server() -> Iterator[RunningFakeCrm]:
    with running_fake_crm() as server:
        yield server


@pytest.fixture
def fake_crm(fake_crm_server: RunningFakeCrm) -> FakeCrmControl:
    """The fake CRM, emptied (no records, faults or logged requests) for every test."""
    fake_crm_server.control.reset()
    return fake_crm_server.control


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
