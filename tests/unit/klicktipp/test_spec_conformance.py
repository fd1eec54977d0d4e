"""Every request the client sends validates against KlickTipp's official OpenAPI spec (openapi-core).

One documented deviation, ``POST /subscriber/tagged`` (KLICKTIPP_API.md §3.3): the spec requires the
filters as body arrays ``status[]``/``bounceStatus[]``, the seed document calls them ``statusFilter[]``,
and KlickTipp's own n8n and Node-RED connectors send them as CSV in the query string with only ``tagid``
in the body. The client follows the connectors (proven against production). So the tagged request is
validated against a copy of the spec that makes the body filters optional and declares the query filters
exactly as ``GET /subscriber`` does; ``test_the_unpatched_spec_rejects_the_connector_form`` keeps the
deviation visible.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.validation.request.exceptions import InvalidRequestBody

from ktsync.worker.klicktipp import KlickTippClient, SessionAuth
from tests.spec import SPEC_PATH
from tests.unit.klicktipp.conftest import BASE, PASSWORD, USERNAME, login_body
from tests.unit.klicktipp.operations import OPERATIONS, SUBSCRIBER_JSON, Operation


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def connector_form_of_tagged(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec, with ``subscriber/tagged`` filters accepted in the query string (see module docstring)."""
    patched = copy.deepcopy(spec)
    patched["components"]["schemas"]["SubscriberTaggedSchema"]["required"] = ["tagid"]
    index_filters = patched["paths"]["/subscriber"]["get"]["parameters"]
    patched["paths"]["/subscriber/tagged"]["post"]["parameters"] = copy.deepcopy(index_filters)
    return patched


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return OpenAPI.from_dict(connector_form_of_tagged(load_spec()))


def validate(spec: OpenAPI, request: requests.PreparedRequest) -> None:
    assert request.url is not None
    assert request.url.startswith(BASE)
    spec.validate_request(RequestsOpenAPIRequest(request))


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_every_operation_request_matches_the_spec(
    op: Operation, spec: OpenAPI, rsps: responses.RequestsMock, add_login: Callable[..., None]
) -> None:
    # Given a session client (so the login and the cookie are validated too)
    add_login()
    rsps.add(op.method, f"{BASE}{op.path}", json=op.answer)
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD), session=requests.Session())

    # When the operation is called
    op.call(client)

    # Then the login and the operation's request both validate against the spec
    assert [c.request.path_url.split("?")[0] for c in rsps.calls] == ["/account/login", op.path]
    for call in rsps.calls:
        validate(spec, call.request)


VARIANTS: list[tuple[str, str, str, Any, Callable[[KlickTippClient], Any]]] = [
    ("logout", responses.POST, "/account/logout", [True], lambda c: c.logout()),
    ("index without filters", responses.GET, "/subscriber", [], lambda c: c.subscriber_index()),
    ("index all filters", responses.GET, "/subscriber", [],
     lambda c: c.subscriber_index(status=["pending", "subscribed", "unsubscribed"],
                                  bounce_status=["hardbounce", "softbounce", "spambounce", "nobounce"])),
    ("create minimal", responses.POST, "/subscriber", SUBSCRIBER_JSON,
     lambda c: c.subscriber_create(email="a@b.example", listid=None)),
    ("create sms", responses.POST, "/subscriber", SUBSCRIBER_JSON,
     lambda c: c.subscriber_create(smsnumber="+491701234567", listid="7", tagid=3)),
    ("update sms", responses.PUT, "/subscriber/1", [True],
     lambda c: c.subscriber_update(1, newsmsnumber="004912345678")),
    ("update fields", responses.PUT, "/subscriber/1", [True],
     lambda c: c.subscriber_update(1, fields={"fieldBirthday": 755222400, "field12345": "x"})),
    ("tagged no filter", responses.POST, "/subscriber/tagged", {}, lambda c: c.subscriber_tagged("17")),
    ("tag create no text", responses.POST, "/tag", [1], lambda c: c.tag_create("n")),
    ("tag update text only", responses.PUT, "/tag/5", [True], lambda c: c.tag_update(5, text="")),
    ("field get numeric", responses.GET, "/field/203826", {"id": "203826", "name": "x"},
     lambda c: c.field_get("field203826")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "method", "path", "answer", "call"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_argument_variants_match_the_spec(
    name: str,
    method: str,
    path: str,
    answer: Any,
    call: Callable[[KlickTippClient], Any],
    spec: OpenAPI,
    rsps: responses.RequestsMock,
    add_login: Callable[..., None],
) -> None:
    add_login()
    rsps.add(method, f"{BASE}{path}", json=answer)
    client = KlickTippClient(SessionAuth(USERNAME, PASSWORD), session=requests.Session())
    client.login()
    call(client)
    assert len(rsps.calls) == 2
    for sent in rsps.calls:
        validate(spec, sent.request)


def test_the_validator_is_not_vacuous(spec: OpenAPI) -> None:
    # Tag IDs as strings, or an unknown path, must fail: the harness really checks bodies and routes
    bad_body = requests.Request("POST", f"{BASE}/subscriber/tag", json={"email": "a@b", "tagids": ["17"]})
    with pytest.raises(InvalidRequestBody):
        validate(spec, bad_body.prepare())
    unknown = requests.Request("GET", f"{BASE}/subscribers")
    with pytest.raises(PathNotFound):
        validate(spec, unknown.prepare())


def test_the_unpatched_spec_rejects_the_connector_form(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    # The one known deviation: the official spec demands status[] and bounceStatus[] in the body
    rsps.add(responses.POST, f"{BASE}/subscriber/tagged", json={})
    partner_client.subscriber_tagged(17, status="subscribed")
    strict = OpenAPI.from_dict(load_spec())
    with pytest.raises(InvalidRequestBody, match="'status' is a required property"):
        strict.validate_request(RequestsOpenAPIRequest(rsps.calls[0].request))


def test_the_login_request_matches_the_spec(spec: OpenAPI, rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, f"{BASE}/account/login", json=login_body())
    KlickTippClient(SessionAuth(USERNAME, PASSWORD)).login()
    validate(spec, rsps.calls[0].request)
    assert json.loads(rsps.calls[0].request.body) == {"username": USERNAME, "password": PASSWORD}
