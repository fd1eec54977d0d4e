"""One row per Management API operation: how the client is called, what must go over the wire, what comes back.

Shared by the operation tests and the spec-conformance test, so both cover the same 20 data operations
(login and logout are exercised with session auth in their own tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktsync.worker.klicktipp import (
    DataField,
    KlickTippClient,
    OptInProcess,
    Subscriber,
    SubscriptionStatus,
    Tag,
)

SUBSCRIBER_JSON: dict[str, Any] = {
    "id": "155988456",
    "listid": "12345",
    "optin": "28.12.2024 22:52:09",
    "optin_ip": "0.0.0.0 - By API Request",
    "email": "alex@shop.example",
    "status": "Opt-In Pending",
    "bounce": "Not Bounced",
    "date": "",
    "sms_phone": None,
    "sms_status": None,
    "fieldFirstName": "Alex",
    "fieldLastName": "Example",
    "fieldLeadValue": "100",
    "field12345": "Custom",
    "tags": ["17", "18"],
    "manual_tags": {"17": "1758821945"},
    "smart_tags": {"18": "1758822131"},
    "emails_sent": [],
}

EXPECTED_SUBSCRIBER = Subscriber(
    id="155988456",
    email="alex@shop.example",
    status="Opt-In Pending",
    subscription=SubscriptionStatus.PENDING,
    bounce="Not Bounced",
    sms_phone=None,
    listid="12345",
    fields={
        "fieldFirstName": "Alex",
        "fieldLastName": "Example",
        "fieldLeadValue": "100",
        "field12345": "Custom",
    },
    tags=frozenset({"17", "18"}),
    manual_tags={"17": 1758821945},
    smart_tags={"18": 1758822131},
    raw=SUBSCRIBER_JSON,
)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    call: Callable[[KlickTippClient], Any]
    method: str
    path: str
    answer: Any
    expected: Any
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)


EMAIL = "alex@shop.example"

OPERATIONS: list[Operation] = [
    Operation(
        "api.customfield.index",
        lambda c: c.field_index(),
        "GET",
        "/field",
        {"fieldFirstName": "Vorname", "field12345": "My label"},
        {"fieldFirstName": "Vorname", "field12345": "My label"},
    ),
    Operation(
        "api.customfield.retrieve",
        lambda c: c.field_get("fieldFirstName"),
        "GET",
        "/field/FirstName",
        {"id": "FirstName", "name": "Vorname"},
        DataField(id="FirstName", name="Vorname"),
    ),
    Operation(
        "api.optin.index",
        lambda c: c.list_index(),
        "GET",
        "/list",
        {"3": "", "23": "my-optin-process"},
        {"3": "", "23": "my-optin-process"},
    ),
    Operation(
        "api.optin.retrieve",
        lambda c: c.list_get(23),
        "GET",
        "/list/23",
        {
            "listid": "23",
            "name": "SOI",
            "usesingleoptin": True,
            "pendingurl": "https://p.example/pending",
            "thankyouurl": "https://p.example/thanks",
            "resendconfirmationemail": False,
            "usechangeemail": "1",
        },
        OptInProcess(
            id="23",
            name="SOI",
            use_single_optin=True,
            pending_url="https://p.example/pending",
            thankyou_url="https://p.example/thanks",
            resend_confirmation_email=False,
            use_change_email=True,
        ),
    ),
    Operation(
        "api.optin.redirect",
        lambda c: c.list_redirect(23, EMAIL),
        "POST",
        "/list/redirect",
        ["https://p.example/pending"],
        "https://p.example/pending",
        body={"listid": "23", "email": EMAIL},
    ),
    Operation(
        "api.subscriber.index",
        lambda c: c.subscriber_index(status=["subscribed", "pending"], bounce_status="nobounce"),
        "GET",
        "/subscriber",
        ["29513792", "29513793"],
        ["29513792", "29513793"],
        query={"status": "subscribed,pending", "bounceStatus": "nobounce"},
    ),
    Operation(
        "api.subscriber.create",
        lambda c: c.subscriber_create(
            email=EMAIL, listid=12345, tagid="56789", fields={"fieldFirstName": "Alex", "fieldLeadValue": 100}
        ),
        "POST",
        "/subscriber",
        SUBSCRIBER_JSON,
        EXPECTED_SUBSCRIBER,
        body={
            "email": EMAIL,
            "listid": 12345,
            "tagid": 56789,
            "fields": {"fieldFirstName": "Alex", "fieldLeadValue": "100"},
        },
    ),
    Operation(
        "api.subscriber.retrieve",
        lambda c: c.subscriber_get(155988456),
        "GET",
        "/subscriber/155988456",
        SUBSCRIBER_JSON,
        EXPECTED_SUBSCRIBER,
    ),
    Operation(
        "api.subscriber.update",
        lambda c: c.subscriber_update(
            "155988456", newemail="new@shop.example", fields={"fieldLastName": "X"}
        ),
        "PUT",
        "/subscriber/155988456",
        [True],
        None,
        body={"newemail": "new@shop.example", "fields": {"fieldLastName": "X"}},
    ),
    Operation(
        "api.subscriber.delete",
        lambda c: c.subscriber_delete("155988456"),
        "DELETE",
        "/subscriber/155988456",
        [True],
        None,
    ),
    Operation(
        "api.subscriber.unsubscribe",
        lambda c: c.subscriber_unsubscribe(EMAIL),
        "POST",
        "/subscriber/unsubscribe",
        [True],
        None,
        body={"email": EMAIL},
    ),
    Operation(
        "api.subscriber.tag",
        lambda c: c.subscriber_tag(EMAIL, ["17", 18, "17"]),
        "POST",
        "/subscriber/tag",
        [True],
        None,
        body={"email": EMAIL, "tagids": [17, 18]},
    ),
    Operation(
        "api.subscriber.untag",
        lambda c: c.subscriber_untag(EMAIL, "17"),
        "POST",
        "/subscriber/untag",
        [True],
        None,
        body={"email": EMAIL, "tagid": 17},
    ),
    Operation(
        "api.subscriber.search",
        lambda c: c.subscriber_search(EMAIL),
        "POST",
        "/subscriber/search",
        [155986456],
        "155986456",
        body={"email": EMAIL},
    ),
    Operation(
        "api.subscriber.tagged",
        lambda c: c.subscriber_tagged(17, status=["subscribed", "pending"], bounce_status=["nobounce"]),
        "POST",
        "/subscriber/tagged",
        {"155988456": "1758821945", "155988457": 1758822131},
        {"155988456": 1758821945, "155988457": 1758822131},
        body={"tagid": 17},
        query={"status": "subscribed,pending", "bounceStatus": "nobounce"},
    ),
    Operation(
        "api.tag.index",
        lambda c: c.tag_index(),
        "GET",
        "/tag",
        {"21": "mytag", "22": "[CRM] Customer"},
        {"21": "mytag", "22": "[CRM] Customer"},
    ),
    Operation(
        "api.tag.create",
        lambda c: c.tag_create("mynewtag", text="hello"),
        "POST",
        "/tag",
        [49],
        "49",
        body={"name": "mynewtag", "text": "hello"},
    ),
    Operation(
        "api.tag.retrieve",
        lambda c: c.tag_get("21"),
        "GET",
        "/tag/21",
        {"tagid": "21", "name": "mytag", "text": "about"},
        Tag(id="21", name="mytag", text="about"),
    ),
    Operation(
        "api.tag.update",
        lambda c: c.tag_update(21, name="renamed"),
        "PUT",
        "/tag/21",
        [True],
        None,
        body={"name": "renamed"},
    ),
    Operation(
        "api.tag.delete",
        lambda c: c.tag_delete(21),
        "DELETE",
        "/tag/21",
        [True],
        None,
    ),
]
