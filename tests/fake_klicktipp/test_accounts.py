"""Several accounts, each with data of its own: separation, seeding, accounts added at run time, the log."""

from __future__ import annotations

import copy
import time

import pytest
import requests

from fake_klicktipp.seed import SeedError, build, default_seed
from fake_klicktipp.testing import (
    DEMO_USERNAME,
    EXISTING_CONTACT_ID,
    EXISTING_EMAIL,
    SINGLE_OPT_IN_LIST_ID,
    WEBINAR_TAG_ID,
    FakeControl,
    account_entry,
    account_headers,
    account_password,
    partner_headers,
)

from .conftest import Api


@pytest.fixture
def acme(fake_server, control: FakeControl) -> Api:
    """A second account, ``acme``, added at run time with the seed's starting data."""
    control.add_accounts([account_entry("acme")])
    return Api(fake_server.base_url, account_headers("acme"))


def _emails(control: FakeControl, account: str | None = None) -> set[str]:
    return {c["email"] for c in control.state(account=account)["contacts"]}


# -- separation ----------------------------------------------------------------------------------
def test_a_contact_one_account_creates_is_invisible_to_another(api, acme, control):
    # Given two accounts with the same starting data
    # When acme creates a contact
    created = acme.post("/subscriber", json={"email": "only@acme.example", "listid": SINGLE_OPT_IN_LIST_ID})
    contact_id = created.json()["id"]

    # Then acme finds it, demo does not: not by search, not by id, not in its state
    assert acme.post("/subscriber/search", json={"email": "only@acme.example"}).json() == [int(contact_id)]
    assert api.post("/subscriber/search", json={"email": "only@acme.example"}).status_code == 404
    assert api.get(f"/subscriber/{contact_id}").status_code == 404
    assert "only@acme.example" in _emails(control, "acme")
    assert "only@acme.example" not in _emails(control)


def test_tags_and_fields_are_per_account(api, acme):
    # When acme creates a tag and deletes a data field
    tag_id = acme.post("/tag", json={"name": "acme only"}).json()[0]
    assert acme.delete("/field/100001").status_code == 200

    # Then demo has neither change, and may create a tag of the same name
    assert "acme only" not in api.get("/tag").json().values()
    assert api.get("/field/100001").status_code == 200
    assert acme.get("/field/100001").status_code == 404
    assert api.post("/tag", json={"name": "acme only"}).json() == [tag_id]  # ids count per account


def test_changes_to_a_seeded_contact_stay_in_their_account(api, acme, control):
    # When demo deletes the seeded contact both accounts started with
    assert api.delete(f"/subscriber/{EXISTING_CONTACT_ID}").status_code == 200

    # Then acme still has its own copy
    assert acme.get(f"/subscriber/{EXISTING_CONTACT_ID}").json()["email"] == EXISTING_EMAIL
    assert EXISTING_EMAIL in _emails(control, "acme")
    assert EXISTING_EMAIL not in _emails(control)


def test_a_session_login_works_on_its_own_accounts_data(anonymous, acme, control):
    # Given a login as acme
    login = {"username": "acme", "password": account_password("acme")}
    assert anonymous.post("/account/login", json=login).status_code == 200

    # When the session creates a contact, then it is acme's
    anonymous.post("/subscriber", json={"email": "session@acme.example", "listid": SINGLE_OPT_IN_LIST_ID})
    assert "session@acme.example" in _emails(control, "acme")
    assert "session@acme.example" not in _emails(control)


# -- seeding -------------------------------------------------------------------------------------
def test_every_account_starts_with_its_own_copy_of_the_seed_data():
    # Given a seed with two accounts, the second naming tags of its own
    seed = copy.deepcopy(default_seed())
    own_tags = [{"id": 7, "name": "Own tag"}]
    seed["accounts"].append(account_entry("acme", tags=own_tags, contacts=[]))
    seed["accounts"].append(account_entry("beta"))

    # When it is built
    seeded = build(seed)
    states = seeded.states

    # Then each has data of its own: the seed's, or what its entry names
    demo, acme, beta = (states[name] for name in (DEMO_USERNAME, "acme", "beta"))
    assert list(acme.tags) == [7]
    assert acme.contacts == {}
    assert beta.tags.keys() == demo.tags.keys()
    assert beta.contacts.keys() == demo.contacts.keys()
    assert beta.tags[WEBINAR_TAG_ID] is not demo.tags[WEBINAR_TAG_ID]
    assert beta.contacts[EXISTING_CONTACT_ID] is not demo.contacts[EXISTING_CONTACT_ID]
    assert list(demo.accounts) == [DEMO_USERNAME]
    assert list(beta.accounts) == ["beta"]
    assert seeded.state is demo  # the primary: the seed's first account


def test_an_account_named_twice_in_a_seed_is_refused():
    seed = copy.deepcopy(default_seed())
    seed["accounts"].append(copy.deepcopy(seed["accounts"][0]))
    with pytest.raises(SeedError, match="named twice"):
        build(seed)


def test_a_reset_with_a_seed_of_many_accounts_serves_each(fake_server, control):
    # Given a reset with a seed listing three accounts
    seed = copy.deepcopy(default_seed())
    seed["accounts"] += [account_entry(f"t{n}") for n in range(3)]
    control.reset(seed)

    # Then each authenticates and has its own data
    for n in range(3):
        tenant = Api(fake_server.base_url, account_headers(f"t{n}"))
        assert tenant.post("/subscriber/search", json={"email": EXISTING_EMAIL}).status_code == 200
    assert [a["username"] for a in control.accounts()] == [DEMO_USERNAME, "t0", "t1", "t2"]


# -- accounts added at run time ------------------------------------------------------------------
def test_fifty_accounts_are_added_in_one_quick_call(fake_server, control):
    # When 50 accounts are added
    started = time.monotonic()
    added = control.add_accounts(account_entry(f"tenant-{n}") for n in range(50))
    took = time.monotonic() - started

    # Then they are listed with their starting contacts, and the last one can call the API
    assert added == [f"tenant-{n}" for n in range(50)]
    assert took < 2.0
    listed = control.accounts()
    assert len(listed) == 51
    assert listed[0] == {"username": DEMO_USERNAME, "contacts": 2, "primary": True}
    assert control.health()["accounts"] == 51
    tenant = Api(fake_server.base_url, account_headers("tenant-49"))
    assert tenant.get("/tag").status_code == 200


def test_adding_an_existing_account_is_400_and_adds_none(fake_server, control):
    url = f"{fake_server.base_url}/_fake/accounts"
    body = {"accounts": [account_entry("new-one"), account_entry(DEMO_USERNAME)]}
    response = requests.post(url, json=body, timeout=5)
    assert response.status_code == 400
    assert DEMO_USERNAME in response.json()["error"]
    assert [a["username"] for a in control.accounts()] == [DEMO_USERNAME]


def test_a_bad_account_entry_is_400(fake_server, control):
    response = requests.post(f"{fake_server.base_url}/_fake/accounts", json={"accounts": [{}]}, timeout=5)
    assert response.status_code == 400


def test_a_reset_forgets_accounts_added_at_run_time(fake_server, acme, control):
    control.reset()
    assert [a["username"] for a in control.accounts()] == [DEMO_USERNAME]
    assert acme.get("/tag").status_code == 403


def test_the_state_of_an_unknown_account_is_400(fake_server, control):
    response = requests.get(f"{fake_server.base_url}/_fake/state", params={"account": "nobody"}, timeout=5)
    assert response.status_code == 400


# -- the request log and the budget per account --------------------------------------------------
def test_the_request_log_names_the_account_of_each_request(api, acme, anonymous, control):
    # Given requests by demo, by acme, and a session login as acme
    api.get("/tag")
    acme.get("/tag")
    acme.get("/list")
    anonymous.post("/account/login", json={"username": "acme", "password": account_password("acme")})

    # Then every entry names its account, and ?account= selects one account's entries
    assert [r["account"] for r in control.requests()] == [DEMO_USERNAME, "acme", "acme", "acme"]
    assert [r["operation"] for r in control.requests(account="acme")] == [
        "api.tag.index",
        "api.optin.index",
        "api.account.login",
    ]
    assert [r["path"] for r in control.requests(account=DEMO_USERNAME)] == ["/tag"]


def test_the_rate_limit_is_a_budget_of_each_account(api, acme, control):
    # Given a budget of one request (burst 1) per account
    control.faults(rate_limit={"per_second": 0.01, "burst": 1})

    # When demo spends its budget, then acme still has its own
    assert [api.get("/tag").status_code, api.get("/tag").status_code] == [200, 429]
    assert acme.get("/tag").status_code == 200
    assert [(r["account"], r["status"]) for r in control.requests()] == [
        (DEMO_USERNAME, 200),
        (DEMO_USERNAME, 429),
        ("acme", 200),
    ]


def test_partner_headers_of_an_unknown_account_are_refused(fake_server, control):
    stranger = Api(fake_server.base_url, partner_headers(username="acme", customer_key="acme-key"))
    assert stranger.get("/tag").status_code == 403
