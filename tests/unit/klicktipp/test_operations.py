"""Every client method sends the right request and parses the answer, tolerantly where sources disagree."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from ktsync.worker.klicktipp import (
    Account,
    KlickTippClient,
    MalformedResponse,
    NotFound,
    SubscriptionStatus,
)
from tests.unit.klicktipp.conftest import BASE, SESSID, SESSION_NAME, USERNAME, calls_to, login_body
from tests.unit.klicktipp.operations import OPERATIONS, SUBSCRIBER_JSON, Operation


def sent_json(call: Any) -> Any:
    body = call.request.body
    return None if body is None else json.loads(body)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.operation_id)
def test_operation_sends_the_documented_request_and_parses_the_answer(
    op: Operation, rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    # Given KlickTipp answers the operation with its documented body
    rsps.add(op.method, f"{BASE}{op.path}", json=op.answer)

    # When the client method is called
    result = op.call(partner_client)

    # Then exactly one request with the documented method, path, query and body went out
    assert len(rsps.calls) == 1
    request = rsps.calls[0].request
    url = urlsplit(request.url)
    assert (request.method, url.path) == (op.method, op.path)
    assert dict(parse_qsl(url.query)) == op.query
    assert sent_json(rsps.calls[0]) == op.body
    if op.body is not None:
        assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    # And the answer is parsed into the typed value
    assert result == op.expected


def test_the_table_covers_every_operation_but_login_and_logout() -> None:
    assert len({op.operation_id for op in OPERATIONS}) == 20


def test_login_returns_the_account_and_logout_ends_the_session(
    rsps: responses.RequestsMock, session_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/account/login", json=login_body())
    rsps.add(responses.POST, f"{BASE}/account/logout", json=[True])

    account = session_client.login()
    session_client.login()  # already logged in: no second login
    session_client.logout()

    assert account == Account(uid="4711", username=USERNAME, email="owner@shop.example")
    assert [c.request.path_url for c in rsps.calls] == ["/account/login", "/account/logout"]
    assert sent_json(rsps.calls[0]) == {"username": USERNAME, "password": "s3cret-Passw0rd!"}
    assert rsps.calls[1].request.headers["Cookie"] == f"{SESSION_NAME}={SESSID}"
    assert rsps.calls[1].request.body is None


def test_login_and_logout_send_nothing_with_partner_auth(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    assert partner_client.login() is None
    partner_client.logout()
    assert len(rsps.calls) == 0


# -- argument shaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fieldid", "path"),
    [
        ("fieldFirstName", "/field/FirstName"),
        ("field203826", "/field/203826"),
        ("203826", "/field/203826"),
        ("FirstName", "/field/FirstName"),
        ("fieldsomething", "/field/fieldsomething"),
    ],
)
def test_field_get_strips_the_field_prefix(
    fieldid: str, path: str, rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}{path}", json={"id": "x", "name": "y"})
    partner_client.field_get(fieldid)
    assert rsps.calls[0].request.path_url == path


def test_subscriber_create_without_listid_sends_no_listid(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    # Given the caller explicitly chose the account's default double opt-in
    rsps.add(responses.POST, f"{BASE}/subscriber", json=SUBSCRIBER_JSON)
    partner_client.subscriber_create(smsnumber="+491701234567", listid=None)
    assert sent_json(rsps.calls[0]) == {"smsnumber": "+491701234567"}


def test_subscriber_create_requires_listid_to_be_named() -> None:
    with pytest.raises(TypeError):
        KlickTippClient.subscriber_create(object(), email="a@b.example")  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.subscriber_create(listid=1), "email or an smsnumber"),
        (lambda c: c.subscriber_create(email="", smsnumber="", listid=1), "email or an smsnumber"),
        (lambda c: c.subscriber_update("1"), "newemail, newsmsnumber or fields"),
        (lambda c: c.subscriber_update("1", fields={}), "newemail, newsmsnumber or fields"),
        (lambda c: c.tag_update(1), "name or a text"),
        (lambda c: c.subscriber_tag("a@b.example", []), "at least one tag"),
        (lambda c: c.subscriber_tag("a@b.example", ["abc"]), "tagid must be numeric"),
        (lambda c: c.subscriber_untag("a@b.example", True), "string or an integer"),
        (lambda c: c.subscriber_create(email="a@b.example", listid=0), "listid must be 1 or more"),
        (lambda c: c.subscriber_create(email="a@b.example", listid="0"), "listid must be 1 or more"),
        (lambda c: c.subscriber_create(email="a@b.example", listid=-3), "listid must be 1 or more"),
        (lambda c: c.subscriber_create(email="a@b.example", listid=1, tagid=0), "tagid must be 1 or more"),
        (lambda c: c.subscriber_tag("a@b.example", [5, "00"]), "tagid must be 1 or more"),
        (lambda c: c.list_redirect(0, "a@b.example"), "listid must be 1 or more"),
        (lambda c: c.subscriber_get(0), "subscriber_id must be 1 or more"),
        (lambda c: c.subscriber_delete("0"), "subscriber_id must be 1 or more"),
        (lambda c: c.list_get(" "), "must not be empty"),
        (lambda c: c.subscriber_unsubscribe(""), "email must be a non-empty string"),
        (lambda c: c.tag_create(" "), "name must be a non-empty string"),
        (lambda c: c.subscriber_index(status="Subscribed"), "unknown status filter"),
        (lambda c: c.subscriber_tagged(1, bounce_status=["bounced"]), "unknown bounceStatus filter"),
        (
            lambda c: c.subscriber_create(email="a@b.example", listid=1, fields={"FirstName": "x"}),
            "start with",
        ),
        (lambda c: c.subscriber_create(email="a@b.example", listid=1, fields={"fieldX": 1.5}), "str or int"),
        (lambda c: c.subscriber_create(email="a@b.example", listid=1, fields={"fieldX": True}), "str or int"),
    ],
)
def test_wrong_arguments_raise_value_error_before_sending(
    call: Callable[[KlickTippClient], Any],
    message: str,
    rsps: responses.RequestsMock,
    partner_client: KlickTippClient,
) -> None:
    with pytest.raises(ValueError, match=message):
        call(partner_client)
    assert len(rsps.calls) == 0


def test_subscriber_tag_accepts_a_single_id(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/subscriber/tag", json=[True])
    partner_client.subscriber_tag("a@b.example", "17")  # type: ignore[arg-type]
    assert sent_json(rsps.calls[0])["tagids"] == [17]


def test_subscriber_ids_are_escaped_in_the_path(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    # A "Contact Key" is accepted as ID; whatever it is, it must stay one path segment
    rsps.add(responses.GET, f"{BASE}/subscriber/a%2Fb%3Fc", json=SUBSCRIBER_JSON)
    partner_client.subscriber_get("a/b?c")
    assert rsps.calls[0].request.path_url == "/subscriber/a%2Fb%3Fc"


def test_subscriber_index_sends_no_query_without_filters(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber", json=[])
    assert partner_client.subscriber_index() == []
    assert rsps.calls[0].request.path_url == "/subscriber"


# -- tolerant parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [["1", "2"], [1, 2], {"subscribers": ["1", "2"]}, {"subscribers": [1, "2"]}],
    ids=["strings", "numbers", "wrapped", "wrapped-mixed"],
)
def test_subscriber_index_accepts_both_shapes(
    answer: Any, rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber", json=answer)
    assert partner_client.subscriber_index() == ["1", "2"]


def test_subscriber_index_reads_404_as_no_contacts(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber", status=404, json=["Es existieren keine Kontakte."])
    assert partner_client.subscriber_index(status="unsubscribed") == []


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (200, [155986456], "155986456"),
        (200, ["155986456"], "155986456"),
        (200, 155986456, "155986456"),
        (200, [], None),
        (404, ["There is no such entity."], None),
        (404, ["Diesen Kontakt gibt es nicht."], None),
    ],
)
def test_subscriber_search_tolerates_shapes_and_reads_404_as_none(
    status: int,
    answer: Any,
    expected: str | None,
    rsps: responses.RequestsMock,
    partner_client: KlickTippClient,
) -> None:
    rsps.add(responses.POST, f"{BASE}/subscriber/search", status=status, json=answer)
    assert partner_client.subscriber_search("a@b.example") == expected


@pytest.mark.parametrize("answer", [[49], ["49"], 49, "49"])
def test_tag_create_reads_the_new_id_in_any_form(
    answer: Any, rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.POST, f"{BASE}/tag", json=answer)
    assert partner_client.tag_create("t") == "49"


@pytest.mark.parametrize(
    "kwargs", [{"json": [True]}, {"json": True}, {"body": ""}], ids=["[true]", "true", "empty body"]
)
def test_boolean_answers_are_accepted_in_every_form(
    kwargs: dict[str, Any], rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.DELETE, f"{BASE}/tag/21", **kwargs)
    assert partner_client.tag_delete(21) is None


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        (responses.GET, "/tag", lambda c: c.tag_index()),
        (responses.GET, "/field", lambda c: c.field_index()),
        (responses.GET, "/list", lambda c: c.list_index()),
        (responses.POST, "/subscriber/tagged", lambda c: c.subscriber_tagged(17)),
    ],
)
def test_an_empty_map_may_come_as_an_empty_list(
    method: str,
    path: str,
    call: Callable[[KlickTippClient], Any],
    rsps: responses.RequestsMock,
    partner_client: KlickTippClient,
) -> None:
    # PHP encodes an empty associative array as []
    rsps.add(method, f"{BASE}{path}", json=[])
    assert call(partner_client) == {}


def test_numeric_ids_in_maps_become_strings(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", json={"21": "a", "22": 5})
    assert partner_client.tag_index() == {"21": "a", "22": "5"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Subscribed", SubscriptionStatus.SUBSCRIBED),
        ("subscribed", SubscriptionStatus.SUBSCRIBED),
        ("SUBSCRIBED", SubscriptionStatus.SUBSCRIBED),
        ("Opt-In Pending", SubscriptionStatus.PENDING),
        ("opt-in pending", SubscriptionStatus.PENDING),
        ("Pending", SubscriptionStatus.PENDING),
        ("Unsubscribed", SubscriptionStatus.UNSUBSCRIBED),
        ("Abgemeldet", SubscriptionStatus.UNKNOWN),
        ("", SubscriptionStatus.UNKNOWN),
    ],
)
def test_subscription_status_is_normalized(raw: str, expected: SubscriptionStatus) -> None:
    assert SubscriptionStatus.from_raw(raw) == expected


def test_a_sparse_subscriber_is_parsed_with_defaults(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    # Given a subscriber object with numeric id, SMS only, PHP-style empty maps and no tags key
    rsps.add(
        responses.GET,
        f"{BASE}/subscriber/7",
        json={
            "id": 7,
            "email": "",
            "sms_phone": "00491701234567",
            "manual_tags": {"5": "x"},
            "smart_tags": [],
        },
    )
    subscriber = partner_client.subscriber_get(7)
    assert subscriber.id == "7"
    assert subscriber.email is None
    assert subscriber.sms_phone == "00491701234567"
    assert subscriber.subscription is SubscriptionStatus.UNKNOWN
    assert subscriber.tags == frozenset({"5"})
    assert subscriber.manual_tags == {"5": 0}
    assert dict(subscriber.smart_tags) == {}
    assert dict(subscriber.fields) == {}
    assert subscriber.listid is None


def test_a_subscriber_wrapped_in_a_list_is_accepted(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/subscriber/155988456", json=[SUBSCRIBER_JSON])
    assert partner_client.subscriber_get("155988456").id == "155988456"


@pytest.mark.parametrize(
    ("method", "path", "call", "answer"),
    [
        (responses.GET, "/subscriber/1", lambda c: c.subscriber_get(1), ["not", "a", "subscriber"]),
        (responses.GET, "/subscriber/1", lambda c: c.subscriber_get(1), {"email": "no-id@b.example"}),
        (responses.GET, "/subscriber", lambda c: c.subscriber_index(), {"unexpected": True}),
        (responses.GET, "/tag", lambda c: c.tag_index(), "a string"),
        (responses.POST, "/subscriber/tagged", lambda c: c.subscriber_tagged(1), {"1": "yesterday"}),
        (responses.POST, "/tag", lambda c: c.tag_create("t"), [True]),
        (responses.DELETE, "/tag/1", lambda c: c.tag_delete(1), [False]),
        (responses.POST, "/list/redirect", lambda c: c.list_redirect(1, "a@b.example"), [None]),
    ],
)
def test_a_2xx_answer_of_the_wrong_shape_is_a_malformed_response(
    method: str,
    path: str,
    call: Callable[[KlickTippClient], Any],
    answer: Any,
    rsps: responses.RequestsMock,
    partner_client: KlickTippClient,
) -> None:
    rsps.add(method, f"{BASE}{path}", json=answer)
    with pytest.raises(MalformedResponse) as caught:
        call(partner_client)
    assert caught.value.status == 200
    assert caught.value.retryable


def test_a_2xx_answer_that_is_not_json_is_a_malformed_response(
    rsps: responses.RequestsMock, partner_client: KlickTippClient
) -> None:
    rsps.add(responses.GET, f"{BASE}/tag", body="<html>maintenance</html>", status=200)
    with pytest.raises(MalformedResponse, match="not JSON"):
        partner_client.tag_index()


def test_not_found_on_get_is_raised(rsps: responses.RequestsMock, partner_client: KlickTippClient) -> None:
    rsps.add(responses.GET, f"{BASE}/tag/9", status=404, json=["Kein Tag mit dieser ID."])
    with pytest.raises(NotFound) as caught:
        partner_client.tag_get(9)
    assert caught.value.messages == ("Kein Tag mit dieser ID.",)
    assert calls_to(rsps, "/tag/9")
