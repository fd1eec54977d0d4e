"""Control endpoints over loopback: faults, sessions, request log, reset, state dump."""

from __future__ import annotations

import copy

import pytest
import requests

from fake_klicktipp.seed import default_seed
from fake_klicktipp.testing import DEMO_PASSWORD, DEMO_USERNAME, EXISTING_EMAIL, partner_headers

from .conftest import Api

LOGIN = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}


def test_health(fake_server):
    assert fake_server.control.health()["status"] == "ok"


def test_rate_limit_answers_429_with_retry_after(api, control):
    control.faults(rate_limit={"per_second": 0.01, "burst": 2})
    statuses = [api.get("/tag").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = api.get("/tag")
    assert int(limited.headers["Retry-After"]) >= 1
    control.faults(rate_limit=None)
    assert api.get("/tag").status_code == 200


def test_rate_limit_is_per_account(fake_server, control):
    seed = copy.deepcopy(default_seed())
    seed["accounts"].append(dict(seed["accounts"][0], username="other", customer_key="other-key"))
    control.reset(seed)
    control.faults(rate_limit={"per_second": 0.01, "burst": 1})
    demo = Api(fake_server.base_url, partner_headers())
    other = Api(fake_server.base_url, partner_headers(username="other", customer_key="other-key"))
    assert [demo.get("/tag").status_code, demo.get("/tag").status_code] == [200, 429]
    assert other.get("/tag").status_code == 200


def test_control_requests_are_never_limited_or_logged(api, control):
    control.faults(rate_limit={"per_second": 0.01, "burst": 1})
    for _ in range(5):
        control.health()
    assert control.requests() == []


def test_error_rate_and_status(api, control):
    control.faults(error_rate=1.0, error_status=502)
    assert api.get("/tag").status_code == 502
    control.faults(error_rate=0.0)
    assert api.get("/tag").status_code == 200


def test_outage_window(api, control):
    control.faults(outage_seconds=300)
    assert api.get("/tag").status_code == 503
    assert control.state()["faults"]["outage_seconds"] > 0
    control.faults(outage_seconds=0)
    assert api.get("/tag").status_code == 200


def test_latency_is_configurable_and_requests_still_succeed(api, control):
    assert control.faults(latency_ms=20)["latency_ms"] == 20
    assert api.get("/tag").status_code == 200


def test_malformed_bodies(api, control):
    control.faults(malformed_rate=1.0)
    response = api.get("/tag")
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_session_ttl_expires_sessions(anonymous, control):
    anonymous.post("/account/login", json=LOGIN)
    assert anonymous.get("/tag").status_code == 200
    control.faults(session_ttl=0)
    assert anonymous.get("/tag").status_code == 403
    assert control.state()["sessions"] == 0


def test_invalidate_sessions(anonymous, control):
    anonymous.post("/account/login", json=LOGIN)
    assert control.invalidate_sessions() == 1
    assert anonymous.get("/tag").status_code == 403
    assert anonymous.post("/account/login", json=LOGIN).status_code == 200


def test_a_changed_password_refuses_the_old_one_and_a_reset_restores_it(anonymous, control):
    control.change_password(LOGIN["username"], "rotated")
    assert anonymous.post("/account/login", json=LOGIN).status_code == 401
    assert anonymous.post("/account/login", json={**LOGIN, "password": "rotated"}).status_code == 200
    control.reset()
    assert anonymous.post("/account/login", json=LOGIN).status_code == 200


def test_bad_fault_settings_are_400(control, fake_server):
    response = requests.post(f"{fake_server.base_url}/_fake/faults", json={"error_rate": 3}, timeout=5)
    assert response.status_code == 400
    assert "error_rate" in response.json()["error"]


def test_request_log(api, anonymous, control):
    anonymous.post("/account/login", json=LOGIN)
    api.post("/subscriber/search", json={"email": EXISTING_EMAIL})
    first, second = control.requests()
    assert (first["operation"], first["status"], first["body"]) == (
        "api.account.login",
        200,
        {"username": DEMO_USERNAME, "password": "***"},
    )
    assert (second["method"], second["path"], second["account"]) == (
        "POST",
        "/subscriber/search",
        DEMO_USERNAME,
    )
    assert second["body"] == {"email": EXISTING_EMAIL}
    assert control.requests(since=first["ts"]) == [second]
    control.clear_requests()
    assert control.requests() == []


def test_request_log_records_injected_faults(api, control):
    control.faults(error_rate=1.0)
    api.get("/tag")
    [entry] = control.requests()
    assert (entry["operation"], entry["status"]) == ("api.tag.index", 503)


def test_reset_restores_the_seed_and_clears_faults(api, control):
    api.post("/tag", json={"name": "temporary"})
    control.faults(error_rate=1.0)
    control.reset()
    assert control.requests() == []
    assert control.state()["faults"]["error_rate"] == 0.0
    assert "temporary" not in api.get("/tag").json().values()


def test_reset_with_a_custom_seed(api, control):
    seed = copy.deepcopy(default_seed())
    seed["contacts"] = []
    seed["options"] = {"index_empty_404": False}
    control.reset(seed)
    assert api.get("/subscriber").json() == {"subscribers": []}
    assert control.state()["contacts"] == []


def test_reset_with_a_broken_seed_is_400_and_keeps_the_state(control, fake_server):
    response = requests.post(f"{fake_server.base_url}/_fake/reset", json={"lists": []}, timeout=5)
    assert response.status_code == 400
    assert len(control.state()["contacts"]) == 2


def test_state_dump(api, control):
    api.post("/subscriber", json={"email": "doi@shop.example", "fields": {"fieldFirstName": "Dora"}})
    state = control.state()
    contact = next(c for c in state["contacts"] if c["email"] == "doi@shop.example")
    assert (contact["status"], contact["fields"]) == ("pending", {"fieldFirstName": "Dora"})
    assert state["doi_emails"][0]["contact_id"] == contact["id"]
    assert {t["id"] for t in state["tags"] if t["smart"]} == {900}
    assert state["options"]["german"] is False
