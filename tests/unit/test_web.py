"""The shared web stack (``ktsync.core.web``): ready line, bounded bodies, exact JSON answers."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ktsync.core.errors import KtsyncError
from ktsync.core.web import (
    AnnouncingServer,
    BodyTooLarge,
    bytes_response,
    catch_all,
    in_thread,
    json_response,
    read_body,
    serve,
    uvicorn_config,
)

READY = "test-web listening on http://{host}:{port}"


async def _echo(request: Request) -> Response:
    return json_response(200, {"method": request.method, "path": request.url.path})


def _app() -> Starlette:
    return Starlette(routes=[catch_all("/{path:path}", _echo)])


@contextmanager
def _running(server: AnnouncingServer) -> Iterator[int]:
    with in_thread(server, "web-under-test") as url:
        yield int(url.rsplit(":", 1)[1])


def test_the_ready_line_names_the_port_the_system_picked_for_port_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a server on port 0
    config = uvicorn_config(_app(), host="127.0.0.1", port=0, log_level="warning")
    # When it starts
    with _running(AnnouncingServer(config, READY)) as port:
        answer = requests.get(f"http://127.0.0.1:{port}/anything", timeout=5)
        # Then it printed its real port once, and answers there
        assert capsys.readouterr().out == READY.format(host="127.0.0.1", port=port) + "\n"
    assert port != 0
    assert answer.json() == {"method": "GET", "path": "/anything"}
    assert "server" not in answer.headers


def test_a_catch_all_route_hands_every_method_to_its_handler() -> None:
    config = uvicorn_config(_app(), host="127.0.0.1", port=0, log_level="warning")
    with _running(AnnouncingServer(config, READY)) as port:
        methods = {m: requests.request(m, f"http://127.0.0.1:{port}/x", timeout=5) for m in ("POST", "PATCH")}
    assert {m: a.json()["method"] for m, a in methods.items()} == {"POST": "POST", "PATCH": "PATCH"}


def test_serve_says_it_did_not_start_when_the_port_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a port someone else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When a server is asked to serve there, Then it returns False instead of exiting
        assert serve(_app(), host="127.0.0.1", port=port, ready_line=READY, log_level="critical") is False
    assert READY.split(" on ")[0] not in capsys.readouterr().out


def test_lifespan_is_on_for_a_starlette_app_and_off_for_a_raw_one() -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        """A raw ASGI app that does not speak the lifespan protocol."""

    assert uvicorn_config(_app(), host="h", port=1, log_level="info").lifespan == "on"
    assert uvicorn_config(raw, host="h", port=1, log_level="info").lifespan == "off"
    config = uvicorn_config(raw, host="h", port=1, log_level="info", graceful=4.5, log_config=None)
    assert (config.timeout_graceful_shutdown, config.log_config) == (5, None)
    assert (config.access_log, config.server_header, config.timeout_keep_alive) == (False, False, 75)


def _request(chunks: list[bytes]) -> Request:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


@pytest.mark.parametrize(
    ("chunks", "limit", "expected"),
    [
        ([b"abc", b"def"], None, b"abcdef"),
        ([b"abc", b"def"], 6, b"abcdef"),
        ([b""], 0, b""),
    ],
)
def test_read_body_returns_a_body_within_the_limit(
    chunks: list[bytes], limit: int | None, expected: bytes
) -> None:
    assert asyncio.run(read_body(_request(chunks), limit)) == expected


def test_read_body_refuses_a_body_past_the_limit_before_reading_the_rest() -> None:
    # Given a body of three chunks whose second passes the limit
    chunks = [b"abc", b"def", b"ghi"]
    request = _request(chunks)
    # When it is read with a limit of 5 bytes, Then BodyTooLarge, a KtsyncError, names the limit
    with pytest.raises(BodyTooLarge) as raised:
        asyncio.run(read_body(request, 5))
    assert isinstance(raised.value, KtsyncError)
    assert raised.value.limit == 5
    assert str(raised.value) == "body larger than 5 bytes"


def test_json_response_is_compact_utf8_json_with_exact_headers_in_order() -> None:
    response = json_response(
        201, {"name": "Müller", "ids": [1, 2]}, [("set-cookie", "a=1"), ("set-cookie", "b=2")]
    )
    payload = '{"name":"Müller","ids":[1,2]}'.encode()
    assert (response.status_code, response.body) == (201, payload)
    assert response.raw_headers == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


def test_json_response_escapes_past_ascii_when_asked() -> None:
    response = json_response(200, ["Müller"], ensure_ascii=True)
    assert response.body == b'["M\\u00fcller"]'
    assert json.loads(response.body) == ["Müller"]


def test_bytes_response_keeps_the_payload_and_may_have_no_content_type() -> None:
    response = bytes_response(204, b"", content_type=None, headers=[("Retry-After", "2")])
    assert response.body == b""
    assert response.raw_headers == [(b"content-length", b"0"), (b"Retry-After", b"2")]
    html = bytes_response(200, b"<html></html>", content_type="text/html; charset=utf-8")
    assert html.raw_headers[0] == (b"content-type", b"text/html; charset=utf-8")


def test_a_plain_starlette_route_still_limits_methods_unlike_catch_all() -> None:
    # a guard on the reason catch_all exists: Starlette gives a function route GET and HEAD only
    assert Route("/x", _echo).methods == {"GET", "HEAD"}
    assert catch_all("/x", _echo).methods is None
