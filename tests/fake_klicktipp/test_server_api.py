"""The 22 operations over loopback against the real server process: auth, encodings, rules, shapes."""

from __future__ import annotations

import pytest
from urllib3 import encode_multipart_formdata

from fake_klicktipp.auth import SESSION_NAME
from fake_klicktipp.testing import (
    CRM_CONTACT_ID_FIELD,
    DEFAULT_DOI_LIST_ID,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DOUBLE_OPT_IN_LIST_ID,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    LIFECYCLE_LEAD_TAG_ID,
    SINGLE_OPT_IN_LIST_ID,
    SMART_TAG_ID,
    UNSUBSCRIBED_CONTACT_ID,
    UNSUBSCRIBED_EMAIL,
    WEBINAR_TAG_ID,
    partner_headers,
)

LOGIN = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}


# -- auth ----------------------------------------------------------------------------------------
def test_protected_routes_need_auth(anonymous):
    response = anonymous.get("/tag")
    assert (response.status_code, response.json()) == (403, ["API access denied."])


def test_login_sets_a_drupal_session_cookie_that_authenticates(anonymous):
    response = anonymous.post("/account/login", json=LOGIN)
    assert response.status_code == 200
    body = response.json()
    assert body["session_name"] == SESSION_NAME
    assert len(body["sessid"]) == 43
    assert response.cookies[SESSION_NAME] == body["sessid"]
    assert set(body["account"]) >= {"uid", "status", "tier", "usergroup", "username", "email", "firstname"}
    assert anonymous.get("/tag").status_code == 200  # the cookie jar sends it back


def test_a_hand_built_cookie_header_authenticates(anonymous, fake_server):
    sessid = anonymous.post("/account/login", data=LOGIN).json()["sessid"]
    anonymous.session.cookies.clear()
    response = anonymous.get("/tag", headers={"Cookie": f"{SESSION_NAME}={sessid}"})
    assert response.status_code == 200


def test_login_while_logged_in_is_406_and_logout_twice_is_406(anonymous):
    anonymous.post("/account/login", json=LOGIN)
    again = anonymous.post("/account/login", json=LOGIN)
    assert (again.status_code, again.json()) == (406, ["Sie sind bereits eingeloggt."])
    out = anonymous.post("/account/logout")
    assert (out.status_code, out.json()) == (200, [True])
    assert anonymous.get("/tag").status_code == 403
    twice = anonymous.post("/account/logout")
    assert (twice.status_code, twice.json()) == (406, ["Benutzer nicht eingeloggt."])


def test_wrong_password_and_malformed_login(anonymous):
    wrong = anonymous.post("/account/login", json={"username": DEMO_USERNAME, "password": "nope"})
    assert (wrong.status_code, wrong.json()) == (401, ["Wrong username or password."])
    malformed = anonymous.post("/account/login", json={"username": 5, "password": "x"})
    assert (malformed.status_code, malformed.json()) == (400, ['The key "username" must be a string.'])


def test_login_with_multipart(anonymous):
    payload, content_type = encode_multipart_formdata(LOGIN)
    response = anonymous.post("/account/login", data=payload, headers={"Content-Type": content_type})
    assert response.status_code == 200


def test_wrong_partner_signature_is_denied(anonymous):
    headers = partner_headers(customer_key="stolen")
    assert anonymous.get("/tag", headers=headers).status_code == 403


def test_auth_failure_status_can_be_401(anonymous, control):
    control.options(auth_failure_status=401)
    response = anonymous.get("/tag")
    assert (response.status_code, response.json()) == (401, ["API access denied."])


# -- routing and encoding ---------------------------------------------------------------------------
def test_api_prefix_and_json_suffix(api):
    assert api.get("/api/tag.json").json() == api.get("/tag").json()
    assert api.get(f"/subscriber/{EXISTING_CONTACT_ID}.json").json()["email"] == EXISTING_EMAIL


def test_unparseable_bodies_are_406(api):
    response = api.post("/subscriber", data=b"{broken", headers={"Content-Type": "application/json"})
    assert response.status_code == 406
    assert api.post("/subscriber", data=b"x", headers={"Content-Type": "text/csv"}).status_code == 406


def test_wrong_method_is_405_and_unknown_path_404(api):
    assert api.delete("/tag").status_code == 405
    assert api.get("/nothing-here").status_code == 404


# -- fields and lists ------------------------------------------------------------------------------
def test_fields(api):
    labels = api.get("/field").json()
    assert labels["fieldFirstName"] == "First Name"
    assert labels["field100002"] == "Lead Score"
    assert api.get("/field/FirstName").json() == {"id": "FirstName", "name": "First Name"}
    assert api.get("/field/100003").json() == {"id": "100003", "name": "Last Purchase"}
    assert api.get("/field/404404").status_code == 404


def test_the_legacy_field_delete_removes_the_field_and_its_values(api, control):
    contact = f"/subscriber/{EXISTING_CONTACT_ID}"
    assert api.get(contact).json()[CRM_CONTACT_ID_FIELD] == "crm-0001"
    assert api.delete("/field/100001").json() == [True]
    assert control.requests()[-1]["operation"] == "api.customfield.delete"
    assert CRM_CONTACT_ID_FIELD not in api.get("/field").json()
    assert api.get("/field/100001").status_code == 404
    assert CRM_CONTACT_ID_FIELD not in api.get(contact).json()
    assert all(CRM_CONTACT_ID_FIELD not in c["fields"] for c in control.state()["contacts"])
    refused = api.put(contact, json={"fields": {CRM_CONTACT_ID_FIELD: "crm-9"}})
    assert (refused.status_code, refused.json()["error"], refused.json()["name"]) == (
        406,
        8,
        CRM_CONTACT_ID_FIELD,
    )
    again = api.delete("/field/100001")
    assert (again.status_code, again.json()) == (404, ["There is no such entity."])


def test_lists(api):
    assert api.get("/list").json() == {"3": "", "23": "CRM Single Opt-In", "24": "CRM Double Opt-In"}
    single = api.get(f"/list/{SINGLE_OPT_IN_LIST_ID}").json()
    assert single["listid"] == SINGLE_OPT_IN_LIST_ID
    assert single["usesingleoptin"] is True
    assert api.get("/list/999").status_code == 404


def test_list_redirect_depends_on_confirmation(api):
    api.post("/subscriber", json={"email": "p@shop.example", "listid": DOUBLE_OPT_IN_LIST_ID})
    pending = api.post("/list/redirect", json={"listid": DOUBLE_OPT_IN_LIST_ID, "email": "p@shop.example"})
    subscribed = api.post("/list/redirect", json={"listid": DOUBLE_OPT_IN_LIST_ID, "email": EXISTING_EMAIL})
    assert "pending" in pending.json()[0]
    assert "thankyou" in subscribed.json()[0]
    assert api.post("/list/redirect", json={"listid": 999, "email": EXISTING_EMAIL}).status_code == 404


# -- contacts --------------------------------------------------------------------------------------
def test_create_with_form_encoding_and_php_keys(api, control):
    response = api.post(
        "/subscriber",
        data={
            "email": "form@shop.example",
            "listid": str(SINGLE_OPT_IN_LIST_ID),
            "tagid": str(WEBINAR_TAG_ID),
            "fields[fieldFirstName]": "Alex",
            "fields[fieldMobilePhone]": "+491701234567",
            "fields[fieldLeadValue]": "1999",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Subscribed"
    assert body["fieldMobilePhone"] == "00491701234567"
    assert body["fieldLeadValue"] == "1999"
    assert body["manual_tags"].keys() == {str(WEBINAR_TAG_ID)}
    assert control.state()["doi_emails"] == []


def test_create_without_listid_is_pending_and_records_one_doi_mail(api, control):
    first = api.post("/subscriber", json={"email": "doi@shop.example"}).json()
    api.post("/subscriber", json={"email": "doi@shop.example"})
    assert (first["status"], first["listid"]) == ("Opt-In Pending", str(DEFAULT_DOI_LIST_ID))
    mails = control.state()["doi_emails"]
    assert [(m["email"], m["listid"]) for m in mails] == [("doi@shop.example", DEFAULT_DOI_LIST_ID)]


def test_create_with_multipart(api):
    payload, content_type = encode_multipart_formdata(
        [("email", "multi@shop.example"), ("listid", "23"), ("fields[field100002]", "7")]
    )
    response = api.post("/subscriber", data=payload, headers={"Content-Type": content_type})
    assert response.json()["field100002"] == "7"


def test_subscriber_object_has_string_values_and_tag_maps(api):
    body = api.get(f"/subscriber/{EXISTING_CONTACT_ID}").json()
    assert body["id"] == str(EXISTING_CONTACT_ID)
    assert body["optin"] == "01.01.2026 00:00:00"
    assert body["tags"] == [str(WEBINAR_TAG_ID), str(SMART_TAG_ID)]
    assert body["manual_tags"] == {str(WEBINAR_TAG_ID): "1767225600"}
    assert body["smart_tags"] == {str(SMART_TAG_ID): "1767312000"}
    assert body["sms_phone"] == ""


def test_sms_keys_can_be_null_when_absent(api, control):
    control.options(sms_null_when_absent=True)
    assert api.get(f"/subscriber/{EXISTING_CONTACT_ID}").json()["sms_phone"] is None


def test_retrieve_by_contact_key_and_unknown(api, control):
    key = next(c["key"] for c in control.state()["contacts"] if c["id"] == EXISTING_CONTACT_ID)
    assert api.get(f"/subscriber/{key}").json()["email"] == EXISTING_EMAIL
    assert api.get("/subscriber/424242").status_code == 404


def test_resubscribing_an_unsubscribed_email_is_refused_with_a_configurable_body(api, control):
    refused = api.post("/subscriber", json={"email": UNSUBSCRIBED_EMAIL, "listid": SINGLE_OPT_IN_LIST_ID})
    assert (refused.status_code, refused.json()) == (406, {"error": 10, "code": 4})
    control.options(unsubscribed_error={"error": 4})
    assert api.post("/subscriber", json={"email": UNSUBSCRIBED_EMAIL}).json() == {"error": 4}


def test_field_validation_error_object(api):
    response = api.post(
        "/subscriber", json={"email": "v@shop.example", "fields": {"fieldLeadValue": "19.99"}}
    )
    assert response.status_code == 406
    assert response.json() == {
        "error": 8,
        "field": "Lead Value",
        "name": "fieldLeadValue",
        "field_value": "19.99",
        "reason": "must be an integer value (decimal numbers are sent multiplied by 100)",
    }


def test_update_delete_and_their_errors(api):
    path = f"/subscriber/{EXISTING_CONTACT_ID}"
    assert api.put(path, json={"newemail": "moved@shop.example", "fields": {"fieldCity": "Bonn"}}).json() == [
        True
    ]
    assert api.get(path).json()["fieldCity"] == "Bonn"
    collision = api.put(path, json={"newemail": UNSUBSCRIBED_EMAIL})
    assert (collision.status_code, collision.json()) == (406, {"error": 507})
    unknown = api.put("/subscriber/424242", json={"newemail": "x@shop.example"})
    assert (unknown.status_code, unknown.json()) == (406, ["Der Kontakt existiert nicht."])
    assert api.delete(path).json() == [True]
    assert api.delete(path).status_code == 406


def test_update_validation_error7_option(api, control):
    control.options(update_validation_error7=True)
    response = api.put(f"/subscriber/{EXISTING_CONTACT_ID}", json={"fields": {"fieldWebsite": "no-scheme"}})
    assert response.json() == {"error": 7}


def test_unsubscribe(api):
    assert api.post("/subscriber/unsubscribe", json={"email": EXISTING_EMAIL}).json() == [True]
    assert api.post("/subscriber/unsubscribe", json={"email": EXISTING_EMAIL}).json() == {"error": 9}
    assert api.post("/subscriber/unsubscribe", json={"email": "nobody@shop.example"}).json() == {"error": 7}


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"email": EXISTING_EMAIL, "tagids": [LIFECYCLE_LEAD_TAG_ID]}},
        {"data": {"email": EXISTING_EMAIL, "tagids[0]": str(LIFECYCLE_LEAD_TAG_ID)}},
        {"data": {"email": EXISTING_EMAIL, "tagids[]": str(LIFECYCLE_LEAD_TAG_ID)}},
    ],
)
def test_tag_in_every_encoding(api, body):
    assert api.post("/subscriber/tag", **body).json() == [True]
    tagged = api.post("/subscriber/tagged", json={"tagid": LIFECYCLE_LEAD_TAG_ID}).json()
    assert list(tagged) == [str(EXISTING_CONTACT_ID)]


def test_tag_and_untag_errors(api):
    assert api.post("/subscriber/tag", json={"email": "x@shop.example", "tagids": [10]}).json() == {
        "error": 7
    }
    assert api.post("/subscriber/tag", json={"email": EXISTING_EMAIL, "tagids": [999]}).json() == {
        "error": 403
    }
    smart = api.post("/subscriber/untag", json={"email": EXISTING_EMAIL, "tagid": SMART_TAG_ID})
    assert (smart.status_code, smart.json()) == (406, {"error": 31})
    assert api.post("/subscriber/untag", json={"email": EXISTING_EMAIL, "tagid": WEBINAR_TAG_ID}).json() == [
        True
    ]


def test_search(api):
    assert api.post("/subscriber/search", json={"email": EXISTING_EMAIL}).json() == [EXISTING_CONTACT_ID]
    missing = api.post("/subscriber/search", json={"email": "nobody@shop.example"})
    assert (missing.status_code, missing.json()) == (404, ["There is no such entity."])


def test_german_mode(api, control):
    control.options(german=True)
    missing = api.post("/subscriber/search", json={"email": "nobody@shop.example"})
    assert missing.json() == ["Diesen Kontakt gibt es nicht."]


def test_index_filters_and_shapes(api, control):
    assert api.get("/subscriber").json() == {"subscribers": [str(EXISTING_CONTACT_ID)]}
    gone = api.get("/subscriber", params={"status": "unsubscribed"}).json()
    assert gone == {"subscribers": [str(UNSUBSCRIBED_CONTACT_ID)]}
    both = api.get("/subscriber", params={"status": "subscribed,unsubscribed", "bounceStatus": "nobounce"})
    assert len(both.json()["subscribers"]) == 2
    assert api.get("/subscriber", params={"status": "pending"}).status_code == 404
    assert api.get("/subscriber", params={"status": "Subscribed"}).status_code == 406
    control.options(index_shape="array", index_empty_404=False)
    assert api.get("/subscriber").json() == [str(EXISTING_CONTACT_ID)]
    assert api.get("/subscriber", params={"status": "pending"}).json() == []


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"params": {"status": "unsubscribed"}, "json": {"tagid": WEBINAR_TAG_ID}},
        {"json": {"tagid": WEBINAR_TAG_ID, "status": ["unsubscribed"], "bounceStatus": ["nobounce"]}},
        {"data": {"tagid": WEBINAR_TAG_ID, "statusFilter[]": "unsubscribed"}},
    ],
)
def test_tagged_filters_from_query_or_body(api, request_kwargs):
    api.post("/subscriber/unsubscribe", json={"email": EXISTING_EMAIL})
    tagged = api.post("/subscriber/tagged", **request_kwargs).json()
    assert tagged == {str(EXISTING_CONTACT_ID): "1767225600"}
    assert api.post("/subscriber/tagged", json={"tagid": WEBINAR_TAG_ID}).json() == {}


def test_tagged_without_tagid(api):
    response = api.post("/subscriber/tagged", json={})
    assert (response.status_code, response.json()) == (401, ["Missing required argument tagid"])


# -- tags --------------------------------------------------------------------------------------------
def test_tag_lifecycle(api):
    assert api.get("/tag").json() == {"10": "Webinar 2026", "11": "[CRM] [Lifecycle Stage] lead"}
    [tag_id] = api.post("/tag", json={"name": "[CRM] [Lifecycle Stage] customer", "text": "t"}).json()
    assert isinstance(tag_id, int)
    assert api.get(f"/tag/{tag_id}").json() == {
        "tagid": str(tag_id),
        "name": "[CRM] [Lifecycle Stage] customer",
        "text": "t",
    }
    duplicate = api.post("/tag", data={"name": "Webinar 2026"})
    assert duplicate.status_code == 406
    assert duplicate.json() == ["A tag or SmartLink with the name Webinar 2026 already exists."]
    assert api.put(f"/tag/{tag_id}", json={"name": "renamed"}).json() == [True]
    assert api.post("/subscriber/tag", json={"email": EXISTING_EMAIL, "tagids": [tag_id]}).json() == [True]
    assert api.delete(f"/tag/{tag_id}").json() == [True]
    assert str(tag_id) not in api.get(f"/subscriber/{EXISTING_CONTACT_ID}").json()["manual_tags"]
    assert api.get(f"/tag/{tag_id}").status_code == 404
    assert api.post("/tag", json={"name": ""}).json() == ["Tag konnte nicht erstellt werden."]
