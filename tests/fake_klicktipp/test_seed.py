"""The shipped seed, the testing constants that name it, and seed validation."""

from __future__ import annotations

import copy

import pytest

from fake_klicktipp import testing
from fake_klicktipp.auth import partner_signature
from fake_klicktipp.seed import SeedError, build, default_seed


def test_testing_constants_match_the_shipped_seed():
    seeded = build(default_seed())
    state = seeded.state
    account = state.accounts[testing.DEMO_USERNAME]
    assert account.password == testing.DEMO_PASSWORD
    assert (account.developer_key, account.customer_key) == (
        testing.DEMO_DEVELOPER_KEY,
        testing.DEMO_CUSTOMER_KEY,
    )
    assert state.default_list_id == testing.DEFAULT_DOI_LIST_ID
    assert state.lists[testing.SINGLE_OPT_IN_LIST_ID].single_opt_in
    assert not state.lists[testing.DOUBLE_OPT_IN_LIST_ID].single_opt_in
    assert state.tags[testing.SMART_TAG_ID].smart
    assert state.tags[testing.WEBINAR_TAG_ID].name == "Webinar 2026"
    assert state.tags[testing.LIFECYCLE_LEAD_TAG_ID].name == "[CRM] [Lifecycle Stage] lead"
    assert state.contacts[testing.EXISTING_CONTACT_ID].email == testing.EXISTING_EMAIL
    assert state.contacts[testing.UNSUBSCRIBED_CONTACT_ID].status == "unsubscribed"
    assert state.fields[testing.CRM_CONTACT_ID_FIELD].label == "CRM Contact ID"


def test_seed_has_the_sixteen_global_fields_and_five_custom_ones():
    fields = build(default_seed()).state.fields
    assert len([key for key in fields if not key[5:].isdigit()]) == 16
    assert {key: f.type for key, f in fields.items() if key[5:].isdigit()} == {
        "field100001": "line",
        "field100002": "number",
        "field100003": "datetime",
        "field100004": "time",
        "field100005": "paragraph",
    }


def test_partner_headers_helper_uses_the_demo_keys():
    assert testing.partner_headers()["X-Ci"] == partner_signature("0123456789abcdef", "customer-key")


def _broken(mutate):
    seed = copy.deepcopy(default_seed())
    mutate(seed)
    return seed


@pytest.mark.parametrize(
    "seed",
    [
        _broken(lambda s: s["lists"].append({"id": 99, "name": ""})),
        _broken(lambda s: s["fields"].append({"key": "shoe", "type": "line"})),
        _broken(lambda s: s["fields"].append({"key": "field7", "type": "colour"})),
        _broken(lambda s: s["contacts"].append(dict(s["contacts"][0], id=5))),
        _broken(lambda s: s["contacts"][0].update(tags={"12345": 1})),
        _broken(lambda s: s["contacts"][0].update(fields={"fieldBirthday": "yesterday"})),
        _broken(lambda s: s["accounts"][0].update(developer_key="xyz")),
        _broken(lambda s: s.update(options={"index_shape": "csv"})),
        _broken(lambda s: s.pop("accounts")),
    ],
)
def test_invalid_seeds_are_refused(seed):
    with pytest.raises(SeedError):
        build(seed)
