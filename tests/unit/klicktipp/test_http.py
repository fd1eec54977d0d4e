"""The wire: gate and observer around every request (logins included), headers, timeouts, failures."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import requests
import responses

from ktsync.worker.klicktipp import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_SIZE,
    DEFAULT_READ_TIMEOUT,
    CallRecord,
    ContactNotFound,
    KlickTippClient,
    PartnerAuth,
    RequestTimeout,
    SessionAuth,
    Timeout,
    TransportError,
    UnexpectedStatus,
)
from ktsync.worker.klicktipp.http import HttpClient
from tests.unit.klicktipp.conftest import BASE, PASSWORD, USERNAME, login_body


class Recorder:
    """A gate and an observer that write one shared event log."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.records: list[CallRecord] = []

    @contextlib.contextmanager
    def gate(self, operation: str) -> Iterator[None]:
        self.events.append(f"enter {operation}")
        try:
            yield
        finally:
            self.events.append(f"exit {operation}")

    def observe(self, record: CallRecord) -> None:
        self.events.append(f"observe {record.operation}")
        self.records.append(record)


def http_event(recorder: Recorder, status: int, body: Any) -> Callable[[requests.PreparedRequest], Any]:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        recorder.events.append(f"http {request.path_url}")
        return status, {}, __import__("json").dumps(body)

    return callback


def test_gate_and_observer_wrap_every_request_logins_included(rsps: responses.RequestsMock) -> None:
    # Given a session client with a gate and an observer
    recorder = Recorder()
    rsps.add_callback(
        responses.POST, f"{BASE}/account/login", callback=http_event(recorder, 200, login_body())
    )
    rsps.add_callback(responses.GET, f"{BASE}/tag", callback=http_event(recorder, 200, {}))
    rsps.add_callback(
        responses.POST, f"{BASE}/subscriber/tag", callback=http_event(recorder, 406, {"error": 7})
    )
    rsps.add_callback(responses.POST, f"{BASE}/account/logout", callback=http_event(recorder, 200, [True]))
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD), gate=recorder.gate, observer=recorder.observe)

    # When it makes a call, a failing call, and closes
    client.tag_index()
    with pytest.raises(ContactNotFound) as caught:
        client.subscriber_tag("a@b.example", [1])
    client.close()

    # Then each HTTP request ran inside the gate and was observed after it
    steps = [
        ("api.account.login", "/account/login"),
        ("api.tag.index", "/tag"),
        ("api.subscriber.tag", "/subscriber/tag"),
        ("api.account.logout", "/account/logout"),
    ]
    assert recorder.events == [
        event
        for op, path in steps
        for event in (f"enter {op}", f"http {path}", f"exit {op}", f"observe {op}")
    ]
    # And the records carry what metrics need, including the error raised
    assert [(r.operation, r.method, r.path, r.status) for r in recorder.records] == [
        ("api.account.login", "POST", "/account/login", 200),
        ("api.tag.index", "GET", "/tag", 200),
        ("api.subscriber.tag", "POST", "/subscriber/tag", 406),
        ("api.account.logout", "POST", "/account/logout", 200),
    ]
    assert [r.error for r in recorder.records] == [None, None, caught.value, None]
    assert all(r.elapsed_s >= 0 for r in recorder.records)


def test_a_transport_failure_is_observed_without_status(rsps: responses.RequestsMock) -> None:
    recorder = Recorder()
    rsps.add(responses.GET, f"{BASE}/tag", body=requests.ConnectionError("Connection refused"))
    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"), observer=recorder.observe)

    with pytest.raises(TransportError) as caught:
        client.tag_index()

    assert type(caught.value) is TransportError
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    [record] = recorder.records
    assert (record.status, record.error) == (None, caught.value)


@pytest.mark.parametrize("exc", [requests.ReadTimeout("read"), requests.ConnectTimeout("connect")])
def test_timeouts_raise_request_timeout(exc: Exception, rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", body=exc)
    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"))
    with pytest.raises(RequestTimeout):
        client.tag_index()


def test_a_failing_observer_does_not_fail_the_call(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", json={"1": "a"})

    def broken(record: CallRecord) -> None:
        raise RuntimeError("metrics down")

    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"), observer=broken)
    assert client.tag_index() == {"1": "a"}
    assert "observer failed" in caplog.text


def test_a_refusing_gate_stops_the_request(rsps: responses.RequestsMock) -> None:
    recorder = Recorder()

    def closed_gate(operation: str) -> contextlib.AbstractContextManager[object]:
        raise RuntimeError("in-flight cap reached")

    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"), gate=closed_gate, observer=recorder.observe)
    with pytest.raises(RuntimeError, match="in-flight cap"):
        client.tag_index()
    assert len(rsps.calls) == 0
    assert recorder.records == []


def test_standard_headers_and_timeouts_are_sent(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, f"{BASE}/subscriber/search", json=[1])
    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"), timeout=Timeout(connect=1.5, read=9.0))

    client.subscriber_search("a@b.example")

    request = rsps.calls[0].request
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Client-Identifier"] == "ktsync"
    assert request.req_kwargs["timeout"] == (1.5, 9.0)


def test_the_client_identifier_can_be_left_out(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    KlickTippClient(PartnerAuth(USERNAME, "00", "c"), client_identifier=None).tag_index()
    assert "Client-Identifier" not in rsps.calls[0].request.headers
    assert "Content-Type" not in rsps.calls[0].request.headers


def test_timeout_defaults_and_validation() -> None:
    assert Timeout().as_requests() == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT) == (3.05, 20.0)
    with pytest.raises(ValueError, match="positive"):
        Timeout(connect=0)
    with pytest.raises(ValueError, match="positive"):
        Timeout(read=-1)


def test_redirects_are_not_followed(rsps: responses.RequestsMock) -> None:
    # Following would forward the session cookie or partner headers to wherever the redirect points
    rsps.add(responses.GET, f"{BASE}/tag", status=302, headers={"Location": "https://elsewhere.example/tag"})
    client = KlickTippClient(PartnerAuth(USERNAME, "00", "c"))
    with pytest.raises(UnexpectedStatus):
        client.tag_index()
    assert len(rsps.calls) == 1


def test_an_own_session_is_pooled_and_closed() -> None:
    http = HttpClient(pool_size=4)
    adapter = http._session.get_adapter(BASE)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter._pool_maxsize == 4  # type: ignore[attr-defined]
    assert HttpClient()._session.get_adapter(BASE)._pool_maxsize == DEFAULT_POOL_SIZE  # type: ignore[attr-defined]
    with mock.patch.object(http._session, "close") as close:
        http.close()
    close.assert_called_once()


def test_an_injected_session_is_left_open() -> None:
    session = requests.Session()
    with mock.patch.object(session, "close") as close:
        KlickTippClient(PartnerAuth(USERNAME, "00", "c"), session=session).close()
    close.assert_not_called()


def test_requests_are_logged_at_debug_level(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ktsync.worker.klicktipp")
    rsps.add(responses.GET, f"{BASE}/tag", json={})
    KlickTippClient(PartnerAuth(USERNAME, "00", "c")).tag_index()
    assert "klicktipp api.tag.index GET /tag -> 200" in caplog.text
