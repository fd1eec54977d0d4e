"""The fake CRM's own behaviour: seeding, faults (count, scope), the request log, control errors."""

from __future__ import annotations

import base64

import requests

from fake_crm.testing import CLOSE_API_KEY, HUBSPOT_TOKEN, ZOHO_TOKEN, FakeCrmControl, RunningFakeCrm

HUBSPOT_AUTH = {"Authorization": f"Bearer {HUBSPOT_TOKEN}"}


def get(server: RunningFakeCrm, path: str, **kwargs: object) -> requests.Response:
    return requests.get(f"{server.base_url}{path}", timeout=5, **kwargs)  # type: ignore[arg-type]


def test_each_crm_checks_its_own_kind_of_credential(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm
) -> None:
    basic = base64.b64encode(f"{CLOSE_API_KEY}:".encode()).decode()
    fake_crm.seed("close", [{"id": "cont_1"}])
    fake_crm.seed("zoho", [{"id": "1"}])

    assert get(fake_crm_server, "/crm/v3/objects/contacts/1", headers=HUBSPOT_AUTH).status_code == 404
    assert get(fake_crm_server, "/crm/v3/objects/contacts/1").status_code == 401
    assert get(fake_crm_server, "/api/v1/contact/cont_1/", headers={"Authorization": f"Basic {basic}"}).ok
    assert get(fake_crm_server, "/api/v1/contact/cont_1/", headers=HUBSPOT_AUTH).status_code == 401
    zoho = get(
        fake_crm_server, "/crm/v7/Contacts/1", headers={"Authorization": f"Zoho-oauthtoken {ZOHO_TOKEN}"}
    )
    assert zoho.json() == {"data": [{"id": "1"}]}
    assert (
        get(
            fake_crm_server, "/crm/v7/Contacts/2", headers={"Authorization": f"Zoho-oauthtoken {ZOHO_TOKEN}"}
        ).status_code
        == 204
    )
    assert [r["authorized"] for r in fake_crm.requests()] == [True, False, True, False, True, True]


def test_faults_apply_to_their_crm_for_their_count_then_stop(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm
) -> None:
    fake_crm.fault(503, crm="zoho")
    fake_crm.fault(429, crm="hubspot", count=2, headers={"Retry-After": "3"})

    answers = [get(fake_crm_server, "/crm/v3/objects/contacts/1", headers=HUBSPOT_AUTH) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 404]
    assert answers[0].headers["Retry-After"] == "3"
    assert answers[0].json()["errorType"] == "RATE_LIMIT"
    assert [f["crm"] for f in fake_crm.faults()] == ["zoho"]
    fake_crm.clear_faults()


def test_seeding_replaces_by_id_and_remove_forgets(
    fake_crm: FakeCrmControl, fake_crm_server: RunningFakeCrm
) -> None:
    fake_crm.seed("hubspot", [{"id": "1", "properties": {"firstname": "A"}}])
    fake_crm.seed("hubspot", [{"id": "1", "properties": {"firstname": "B"}}])
    answer = get(fake_crm_server, "/crm/v3/objects/contacts/1?properties=firstname", headers=HUBSPOT_AUTH)
    assert answer.json()["properties"]["firstname"] == "B"

    assert fake_crm.remove("hubspot", "1") is True
    assert get(fake_crm_server, "/crm/v3/objects/contacts/1", headers=HUBSPOT_AUTH).status_code == 404


def test_control_mistakes_are_answered_with_400_or_404(fake_crm_server: RunningFakeCrm) -> None:
    base = f"{fake_crm_server.base_url}/_fake"
    assert requests.post(f"{base}/contacts/salesforce", json={}, timeout=5).status_code == 400
    assert requests.post(f"{base}/contacts/hubspot", json={"contacts": [{}]}, timeout=5).status_code == 400
    assert requests.post(f"{base}/faults", json={"status": "429"}, timeout=5).status_code == 400
    assert requests.post(f"{base}/faults", data=b"{", timeout=5).status_code == 400
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
    assert get(fake_crm_server, "/crm/v4/objects/contacts/1").status_code == 404
