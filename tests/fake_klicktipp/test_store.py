"""Contact and tag rules on the in-memory state (no HTTP)."""

from __future__ import annotations

import pytest

from fake_klicktipp.catalog import Catalog
from fake_klicktipp.errors import ContactUnsubscribed, FieldRejected, Refused, Rejected
from fake_klicktipp.seed import build, default_seed
from fake_klicktipp.store import ContactChange, Store, Subscription, should_send_confirmation
from fake_klicktipp.testing import (
    DEFAULT_DOI_LIST_ID,
    DOUBLE_OPT_IN_LIST_ID,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    LIFECYCLE_LEAD_TAG_ID,
    SINGLE_OPT_IN_LIST_ID,
    SMART_TAG_ID,
    UNSUBSCRIBED_EMAIL,
    WEBINAR_TAG_ID,
)

NOW = 1_800_000_000
DAY = 86_400


@pytest.fixture
def world():
    state = build(default_seed()).state
    catalog = Catalog(state)
    return state, catalog, Store(state, catalog)


@pytest.fixture
def store(world):
    return world[2]


def error_of(excinfo):
    return (excinfo.value.error, excinfo.value.code)


# -- upsert -----------------------------------------------------------------------------------
def test_new_contact_on_a_single_opt_in_list_is_subscribed_without_mail(world, store):
    contact = store.upsert(Subscription(email="new@shop.example", listid=SINGLE_OPT_IN_LIST_ID), NOW)
    assert (contact.status, contact.confirmed, contact.listid) == ("subscribed", NOW, SINGLE_OPT_IN_LIST_ID)
    assert world[0].doi_mails == []


def test_new_contact_without_listid_runs_the_default_doi_and_records_a_mail(world, store):
    contact = store.upsert(Subscription(email="new@shop.example"), NOW)
    assert (contact.status, contact.listid) == ("pending", DEFAULT_DOI_LIST_ID)
    assert [(m.contact_id, m.listid) for m in world[0].doi_mails] == [(contact.id, DEFAULT_DOI_LIST_ID)]


def test_confirmation_mail_at_most_once_per_day_per_list(world, store):
    first = store.upsert(Subscription(email="p@shop.example", listid=DOUBLE_OPT_IN_LIST_ID), NOW)
    store.upsert(Subscription(email="p@shop.example", listid=DOUBLE_OPT_IN_LIST_ID), NOW + DAY - 1)
    store.upsert(Subscription(email="p@shop.example", listid=DEFAULT_DOI_LIST_ID), NOW + 10)
    store.upsert(Subscription(email="p@shop.example", listid=DOUBLE_OPT_IN_LIST_ID), NOW + DAY)
    mails = [(m.listid, m.at) for m in world[0].doi_mails if m.contact_id == first.id]
    assert mails == [
        (DOUBLE_OPT_IN_LIST_ID, NOW),
        (DEFAULT_DOI_LIST_ID, NOW + 10),
        (DOUBLE_OPT_IN_LIST_ID, NOW + DAY),
    ]


def test_confirmed_contacts_never_get_a_confirmation_mail(world, store):
    store.upsert(Subscription(email=EXISTING_EMAIL, listid=DOUBLE_OPT_IN_LIST_ID), NOW)
    store.upsert(Subscription(email=EXISTING_EMAIL), NOW)
    assert world[0].doi_mails == []


def test_single_opt_in_confirms_a_pending_contact(store):
    store.upsert(Subscription(email="p@shop.example", listid=DOUBLE_OPT_IN_LIST_ID), NOW)
    contact = store.upsert(Subscription(email="P@Shop.Example", listid=SINGLE_OPT_IN_LIST_ID), NOW + 5)
    assert (contact.status, contact.confirmed) == ("subscribed", NOW + 5)


@pytest.mark.parametrize(
    ("now", "last_sent", "ever_confirmed", "expected"),
    [
        (NOW, None, False, True),
        (NOW, NOW - DAY + 1, False, False),
        (NOW, NOW - DAY, False, True),
        (NOW, None, True, False),
    ],
)
def test_confirmation_lock_decision(now, last_sent, ever_confirmed, expected):
    assert should_send_confirmation(last_sent=last_sent, ever_confirmed=ever_confirmed, now=now) is expected


def test_upsert_matches_by_email_case_insensitively_and_updates_fields(store):
    contact = store.upsert(Subscription(email="EXISTING@shop.example", fields={"fieldCity": "Köln"}), NOW)
    assert contact.id == EXISTING_CONTACT_ID
    assert contact.fields["fieldCity"] == "Köln"
    assert contact.fields["fieldFirstName"] == "Erika"


def test_upsert_matches_by_sms_number(store):
    first = store.upsert(Subscription(sms_number="+491701234567", listid=SINGLE_OPT_IN_LIST_ID), NOW)
    again = store.upsert(Subscription(sms_number="00491701234567", listid=SINGLE_OPT_IN_LIST_ID), NOW)
    assert again.id == first.id
    assert first.sms_phone == "00491701234567"


def test_upsert_with_a_tag_assigns_it_once(store):
    contact = store.upsert(Subscription(email="t@shop.example", tagid=WEBINAR_TAG_ID), NOW)
    store.upsert(Subscription(email="t@shop.example", tagid=WEBINAR_TAG_ID), NOW + 60)
    assert contact.tags == {WEBINAR_TAG_ID: NOW}


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        (Subscription(), (32, None)),
        (Subscription(email="not-an-email"), (10, 5)),
        (Subscription(sms_number="12345"), (10, 11)),
        (Subscription(email="x@shop.example", listid=999), (402, None)),
        (Subscription(email="x@shop.example", tagid=999), (403, None)),
        (Subscription(email="x@shop.example", tagid=SMART_TAG_ID), (403, None)),
    ],
)
def test_upsert_refusals(store, subscription, expected):
    with pytest.raises(Rejected) as caught:
        store.upsert(subscription, NOW)
    assert error_of(caught) == expected


def test_resubscribing_an_unsubscribed_email_is_refused(store):
    with pytest.raises(ContactUnsubscribed):
        store.upsert(Subscription(email=UNSUBSCRIBED_EMAIL, listid=SINGLE_OPT_IN_LIST_ID), NOW)


def test_sms_number_of_another_contact_is_refused(store):
    store.upsert(Subscription(email="a@shop.example", sms_number="+4915111111111"), NOW)
    with pytest.raises(Rejected) as caught:
        store.upsert(Subscription(email="b@shop.example", sms_number="+4915111111111"), NOW)
    assert error_of(caught) == (10, 9)


def test_field_validation_failure_names_label_and_key(store):
    with pytest.raises(FieldRejected) as caught:
        store.upsert(Subscription(email="f@shop.example", fields={"fieldLeadValue": "19.99"}), NOW)
    assert (caught.value.field, caught.value.name, caught.value.value) == (
        "Lead Value",
        "fieldLeadValue",
        "19.99",
    )


def test_unknown_field_keys_are_refused(store):
    with pytest.raises(FieldRejected) as caught:
        store.upsert(Subscription(email="f@shop.example", fields={"fieldShoeSize": "44"}), NOW)
    assert caught.value.name == "fieldShoeSize"


def test_a_refused_upsert_changes_nothing(world, store):
    before = len(world[0].contacts)
    with pytest.raises(FieldRejected):
        store.upsert(Subscription(email="f@shop.example", fields={"field100002": "many"}), NOW)
    assert len(world[0].contacts) == before
    assert store.by_email("f@shop.example") is None


# -- update, delete, unsubscribe ---------------------------------------------------------------
def test_update_changes_email_and_keeps_id(store):
    store.update(str(EXISTING_CONTACT_ID), ContactChange(new_email="renamed@shop.example"))
    assert store.search("renamed@shop.example") == EXISTING_CONTACT_ID
    assert store.by_email(EXISTING_EMAIL) is None


def test_update_to_another_contacts_email_is_507(store):
    with pytest.raises(Rejected) as caught:
        store.update(str(EXISTING_CONTACT_ID), ContactChange(new_email=UNSUBSCRIBED_EMAIL))
    assert error_of(caught) == (507, None)


def test_update_to_another_contacts_sms_number_is_10_9(store):
    store.upsert(Subscription(email="s@shop.example", sms_number="+4915222222222"), NOW)
    with pytest.raises(Rejected) as caught:
        store.update(str(EXISTING_CONTACT_ID), ContactChange(new_sms_number="004915222222222"))
    assert error_of(caught) == (10, 9)


def test_update_accepts_the_contact_key(world, store):
    key = world[0].contacts[EXISTING_CONTACT_ID].key
    store.update(key, ContactChange(fields={"field100002": "12"}))
    assert world[0].contacts[EXISTING_CONTACT_ID].fields["field100002"] == "12"


def test_update_field_errors_are_marked_as_update_errors(store):
    with pytest.raises(FieldRejected) as caught:
        store.update(str(EXISTING_CONTACT_ID), ContactChange(fields={"fieldWebsite": "shop.example"}))
    assert caught.value.on_update


def test_update_or_delete_of_an_unknown_contact_is_refused(store):
    with pytest.raises(Refused) as caught:
        store.update("424242", ContactChange(new_email="x@shop.example"))
    assert caught.value.status == 406
    with pytest.raises(Refused):
        store.delete("424242")


def test_delete_frees_the_email(store):
    store.delete(str(EXISTING_CONTACT_ID))
    contact = store.upsert(Subscription(email=EXISTING_EMAIL, listid=SINGLE_OPT_IN_LIST_ID), NOW)
    assert contact.id != EXISTING_CONTACT_ID


def test_unsubscribe_rules(store):
    store.upsert(Subscription(email="pending@shop.example"), NOW)
    with pytest.raises(Rejected) as caught:
        store.unsubscribe("pending@shop.example", NOW)
    assert error_of(caught) == (9, None)
    with pytest.raises(Rejected) as caught:
        store.unsubscribe("nobody@shop.example", NOW)
    assert error_of(caught) == (7, None)
    store.unsubscribe(EXISTING_EMAIL, NOW)
    contact = store.by_email(EXISTING_EMAIL)
    assert contact is not None
    assert (contact.status, contact.unsubscribed) == ("unsubscribed", NOW)


# -- tags --------------------------------------------------------------------------------------
def test_tag_and_untag(store):
    store.tag(EXISTING_EMAIL, [LIFECYCLE_LEAD_TAG_ID], NOW)
    assert store.tagged(LIFECYCLE_LEAD_TAG_ID, {"subscribed"}, {"nobounce"}) == {EXISTING_CONTACT_ID: NOW}
    store.untag(EXISTING_EMAIL, LIFECYCLE_LEAD_TAG_ID)
    store.untag(EXISTING_EMAIL, LIFECYCLE_LEAD_TAG_ID)  # idempotent
    assert store.tagged(LIFECYCLE_LEAD_TAG_ID, {"subscribed"}, {"nobounce"}) == {}


@pytest.mark.parametrize(
    ("email", "tag_id", "expected"),
    [
        ("nobody@shop.example", WEBINAR_TAG_ID, (7, None)),
        (EXISTING_EMAIL, 999, (403, None)),
        (EXISTING_EMAIL, SMART_TAG_ID, (31, None)),
    ],
)
def test_untag_refusals(store, email, tag_id, expected):
    with pytest.raises(Rejected) as caught:
        store.untag(email, tag_id)
    assert error_of(caught) == expected


def test_tagging_with_an_unknown_tag_changes_nothing(world, store):
    with pytest.raises(Rejected):
        store.tag(EXISTING_EMAIL, [LIFECYCLE_LEAD_TAG_ID, 999], NOW)
    assert LIFECYCLE_LEAD_TAG_ID not in world[0].contacts[EXISTING_CONTACT_ID].tags


def test_tag_names_are_unique_across_smart_tags_case_insensitively(world):
    catalog = world[1]
    with pytest.raises(Refused) as caught:
        catalog.create_tag("webinar 2026", "")
    assert (caught.value.status, caught.value.params) == (406, {"name": "webinar 2026"})
    with pytest.raises(Refused):
        catalog.create_tag("SmartLink Clicked", "")
    with pytest.raises(Refused):
        catalog.create_tag("  ", "")


def test_created_tags_get_new_ids_and_are_listed(world):
    catalog = world[1]
    tag = catalog.create_tag("[CRM] [Lifecycle Stage] customer", "")
    assert tag.id > SMART_TAG_ID
    assert catalog.manual_tag_names()[str(tag.id)] == "[CRM] [Lifecycle Stage] customer"
    assert str(SMART_TAG_ID) not in catalog.manual_tag_names()


def test_deleting_a_tag_untags_everyone(world, store):
    world[1].delete_tag(WEBINAR_TAG_ID)
    assert WEBINAR_TAG_ID not in world[0].contacts[EXISTING_CONTACT_ID].tags
    with pytest.raises(Rejected):
        store.tag(EXISTING_EMAIL, [WEBINAR_TAG_ID], NOW)


def test_index_filters(store):
    store.upsert(Subscription(email="pending@shop.example"), NOW)
    assert store.index({"subscribed"}, {"nobounce"}) == [EXISTING_CONTACT_ID]
    assert len(store.index({"subscribed", "pending", "unsubscribed"}, {"nobounce"})) == 3
