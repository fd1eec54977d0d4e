"""The operator console's pages on a real Redis, over real HTTP: seeded dead letters, states, timelines
and review entries; authentication, roles and CSRF; no personal data in URLs or titles."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from ktsync.config.settings import Settings
from ktsync.console.audit import RedisAuditLog
from ktsync.core.lanes import Lane
from ktsync.queues import queue_statuses
from ktsync.worker.deadletter import DeadLetter, RedisDeadLetterStore
from ktsync.worker.review import RedisReviewList
from ktsync.worker.state import ContactState, RedisStateStore
from tests.integration.console_helpers import OPERATOR, VIEWER, Client, console_of, serving

pytestmark = pytest.mark.integration
NOW = time.time()
TITLE = re.compile(r"<title>([^<]*)</title>")


def letter(n: int, reason: str = "retries_exhausted", code: int | None = None, **message: Any) -> DeadLetter:
    body = {"v": 1, "type": "contact.upsert", "source": "hubspot", "crm_contact_id": str(500 + n),
            "email": f"person{n}@shop.example", "occurred_at": NOW - 600, **message}  # fmt: skip
    error = {"message": "KlickTipp kept failing" if code is None else "Field validation failed"}
    return DeadLetter(
        id=f"letter-{n}", message=body, task="ktsync.sync_contact", reason=reason,
        error={**error, **({"error": code} if code is not None else {})}, attempts=5,
        first_failed_at=time.time() - 2000, last_failed_at=time.time() - 1000 + 100 * n, source="hubspot",
    )  # fmt: skip


@pytest.fixture
def letters(redis_client: redis.Redis, settings: Settings) -> RedisDeadLetterStore:
    store = RedisDeadLetterStore(redis_client, settings.key_prefix)
    for n in range(3):
        store.add(letter(n))
    for n in range(3, 5):
        store.add(letter(n, "validation", 8))
    store.add(letter(5, "invalid_message", None, v=7))  # breaks the contract: a replay refuses it
    return store


@pytest.fixture
def base(settings: Settings, redis_client: redis.Redis, env: dict[str, str]) -> Iterator[str]:
    with serving(console_of(settings, redis_client, env)) as url:
        yield url


@pytest.fixture
def operator(base: str) -> Client:
    client = Client(base)
    assert client.login(OPERATOR).status_code == 200
    return client


@pytest.fixture
def viewer(base: str) -> Client:
    client = Client(base)
    assert client.login(VIEWER).status_code == 200
    return client


def groups(html: str) -> dict[tuple[str, str], int]:
    rows = re.findall(r'data-reason="([^"]*)" data-code="([^"]*)">\s*<td class="num dl-count">(\d+)<', html)
    return {(reason, code): int(count) for reason, code, count in rows}


def test_nothing_is_served_without_signing_in(base: str) -> None:
    anonymous = requests.get(base + "/dead-letters", allow_redirects=False, timeout=10)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")
    posted = requests.post(base + "/dead-letters/replay", data={"reason": "validation"}, timeout=10)
    assert posted.status_code == 401
    wrong = requests.get(base + "/", auth=("op", "not-the-password"), timeout=10)
    assert wrong.status_code == 401
    assert requests.get(base + "/healthz", timeout=10).json() == {"status": "ok"}


def test_a_wrong_password_is_refused_and_the_right_one_signs_in(base: str) -> None:
    client = Client(base)
    client.get("/login")
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    refused = client.post("/login", {"username": "op", "password": "op-secret-2"})
    assert refused.status_code == 401
    assert "wrong user name or password" in refused.text
    signed_in = client.login(OPERATOR)
    assert signed_in.url == base + "/"
    assert 'id="whoami">op (operator)' in signed_in.text
    assert 'section class="tenant" data-tenant="default"' in signed_in.text


def test_a_login_without_its_form_token_is_refused(base: str) -> None:
    client = Client(base)
    client.get("/login")
    forged = client.post("/login", {"username": "op", "password": "op-secret-1"}, csrf=False)
    assert forged.status_code == 400
    assert "expired" in forged.text


def test_dead_letters_are_grouped_by_reason_and_code_with_the_runbooks_meaning_and_fix(
    operator: Client, letters: RedisDeadLetterStore
) -> None:
    from ktsync.worker.deadletter.triage import RUNBOOK

    page = operator.get("/dead-letters")
    assert groups(page.text) == {
        ("retries_exhausted", ""): 3,
        ("validation", "8"): 2,
        ("invalid_message", ""): 1,
    }
    meaning, fix = RUNBOOK["validation"]
    assert meaning in page.text
    assert fix.replace("`", "&#96;")[:40] in page.text.replace("`", "&#96;")
    assert page.text.count('class="dl-entry"') == 6


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"reason": "validation"}, {("validation", "8"): 2}),
        ({"code": "8"}, {("validation", "8"): 2}),
        ({"source": "close"}, {}),
        ({"since": "750s"}, {("validation", "8"): 2, ("invalid_message", ""): 1}),
    ],
)
def test_filters_narrow_the_groups(
    operator: Client, letters: RedisDeadLetterStore, query: dict[str, str], expected: dict[Any, int]
) -> None:
    page = operator.get("/dead-letters", params=query)
    assert page.status_code == 200
    assert groups(page.text) == expected


def test_a_wrong_filter_says_which_field_and_why(operator: Client, letters: RedisDeadLetterStore) -> None:
    page = operator.get("/dead-letters", params={"code": "eight"})
    assert page.status_code == 400
    assert "code: a KlickTipp error code is a number" in page.text
    page = operator.get("/dead-letters", params={"since": "yesterday"})
    assert page.status_code == 400
    assert "since: " in page.text
    page = operator.get("/dead-letters", params={"tenant": "nobody"})
    assert page.status_code == 400
    assert "unknown tenant" in page.text


def test_one_letter_in_full(operator: Client, letters: RedisDeadLetterStore) -> None:
    page = operator.get("/dead-letters/letter-3")
    assert page.status_code == 200
    assert "person3@shop.example" in page.text
    assert "Field validation failed" in page.text
    assert re.search(r'id="dl-attempts">5<', page.text)
    assert operator.get("/dead-letters/no-such").status_code == 404


def test_the_replay_preview_lists_what_would_go_and_what_is_refused(
    operator: Client, letters: RedisDeadLetterStore, redis_client: redis.Redis, settings: Settings
) -> None:
    operator.get("/dead-letters")
    preview = operator.post("/dead-letters/replay/preview", [("ids", "letter-0"), ("ids", "letter-5")])
    assert "1 would be replayed, 1 refused" in preview.text
    assert "the message breaks the contract" in preview.text
    assert _bulk_pending(redis_client, settings) == 0  # a preview publishes nothing


def _bulk_pending(client: redis.Redis, settings: Settings) -> int:
    queue = settings.worker.lane_queue(Lane.BULK)
    return queue_statuses(client, [queue], time.time(), settings.broker_prefix)[0].pending


def test_replaying_a_group_publishes_it_on_the_bulk_lane_and_logs_who(
    operator: Client, letters: RedisDeadLetterStore, redis_client: redis.Redis, settings: Settings
) -> None:
    operator.get("/dead-letters")
    preview = operator.post("/dead-letters/replay/preview", {"reason": "retries_exhausted", "code": ""})
    assert "3 would be replayed, 0 refused" in preview.text
    done = operator.post("/dead-letters/replay", {"reason": "retries_exhausted", "code": ""})
    assert done.status_code == 200
    assert "3 replayed, 0 refused" in done.text
    assert _bulk_pending(redis_client, settings) == 3
    assert [x.replays for x in (letters.get(f"letter-{n}") for n in range(3)) if x] == [1, 1, 1]
    assert letters.count() == 6  # a letter leaves only once its replayed task succeeds
    (logged,) = RedisAuditLog(redis_client, settings.deployment_prefix).recent()
    assert (logged.user, logged.action, logged.count, logged.detail) == (
        "op",
        "replay",
        3,
        "reason=retries_exhausted",
    )
    assert "reason=retries_exhausted" in operator.get("/audit").text


def test_purging_a_selection_after_its_preview(
    operator: Client, letters: RedisDeadLetterStore, redis_client: redis.Redis, settings: Settings
) -> None:
    operator.get("/dead-letters")
    chosen = [("ids", "letter-3"), ("ids", "letter-4")]
    preview = operator.post("/dead-letters/purge/preview", chosen)
    assert "2 dead letters would be deleted" in preview.text
    assert letters.count() == 6
    assert "2 purged" in operator.post("/dead-letters/purge", chosen).text
    assert letters.get("letter-3") is None
    assert letters.count() == 4
    (logged,) = RedisAuditLog(redis_client, settings.deployment_prefix).recent()
    assert (logged.action, logged.count, logged.detail) == ("purge", 2, "2 chosen")


def test_an_action_without_a_selection_or_on_missing_letters_says_so(
    operator: Client, letters: RedisDeadLetterStore
) -> None:
    operator.get("/dead-letters")
    nothing = operator.post("/dead-letters/replay/preview", {})
    assert nothing.status_code == 400
    assert "choose dead letters first" in nothing.text
    gone = operator.post("/dead-letters/purge", [("ids", "letter-99")])
    assert gone.status_code == 400
    assert "no dead letter letter-99" in gone.text
    assert letters.count() == 6


def test_every_state_changing_request_needs_its_csrf_token(
    operator: Client, letters: RedisDeadLetterStore
) -> None:
    for path in ("/dead-letters/replay", "/dead-letters/purge", "/review/done", "/contacts/forget"):
        forged = operator.post(path, {"reason": "validation", "id": "x"}, csrf=False)
        assert forged.status_code == 403, path
        assert "CSRF token is missing or wrong" in forged.text, path
    assert letters.count() == 6
    operator.post("/logout", csrf=False)
    assert 'id="whoami">op' in operator.get("/").text  # a forged logout logs nobody out
    wrong = operator.post("/dead-letters/purge", {"reason": "validation", "csrf": "0" * 64}, csrf=False)
    assert wrong.status_code == 403
    assert letters.count() == 6


def test_a_read_only_user_sees_everything_and_can_change_nothing(
    viewer: Client, letters: RedisDeadLetterStore, redis_client: redis.Redis, settings: Settings
) -> None:
    page = viewer.get("/dead-letters")
    assert 'id="whoami">viewer (read-only)' in page.text
    assert groups(page.text)
    assert "replay-group" not in page.text
    assert "replay-selected" not in page.text
    for path in ("/dead-letters/replay", "/dead-letters/purge", "/dead-letters/replay/preview"):
        refused = viewer.post(path, {"reason": "validation"})
        assert refused.status_code == 403, path
        assert 'id="forbidden"' in refused.text, path
    assert letters.count() == 6
    assert _bulk_pending(redis_client, settings) == 0
    assert viewer.post("/contacts/forget", {"source": "hubspot", "crm_contact_id": "500"}).status_code == 403


def test_http_basic_auth_works_for_scripts(base: str, letters: RedisDeadLetterStore) -> None:
    page = requests.get(base + "/dead-letters", auth=VIEWER, timeout=10)
    assert page.status_code == 200
    assert groups(page.text)


@pytest.fixture
def known_contact(redis_client: redis.Redis, settings: Settings) -> ContactState:
    from ktsync.worker.telemetry import timeline_key

    state = ContactState(source="hubspot", crm_contact_id="700", klicktipp_id="9001",
                         email="known@shop.example", subscription="subscribed", tags=["customer"])  # fmt: skip
    RedisStateStore(redis_client, settings.key_prefix).put(state)
    entry = f'{{"at": {NOW:f}, "kind": "outcome", "outcome": "synced"}}'
    redis_client.lpush(timeline_key(settings.key_prefix, "hubspot", "700"), entry)
    return state


@pytest.mark.parametrize(
    "form",
    [
        {"query": "known@shop.example"},
        {"query": "hubspot/700"},
        {"query": "700"},
        {"query": "700", "source": "hubspot"},
        {"query": "9001", "kind": "klicktipp"},
    ],
)
def test_a_contact_is_found_by_crm_id_address_or_klicktipp_id(
    operator: Client, known_contact: ContactState, form: dict[str, str]
) -> None:
    operator.get("/contacts")
    page = operator.post("/contacts/lookup", form)
    assert page.status_code == 200
    assert 'id="contact"' in page.text
    assert "9001" in page.text
    assert "customer" in page.text
    assert "synced" in page.text
    assert "known@shop.example" not in page.url
    assert "known@shop.example" not in TITLE.search(page.text)[1]


def test_an_unknown_contact_or_an_empty_query_says_so(operator: Client, known_contact: ContactState) -> None:
    operator.get("/contacts")
    assert 'id="contact-missing"' in operator.post("/contacts/lookup", {"query": "nobody@shop.example"}).text
    empty = operator.post("/contacts/lookup", {"query": " "})
    assert empty.status_code == 400
    assert "query: give a CRM id" in empty.text


def test_the_review_list_and_done(
    operator: Client, viewer: Client, redis_client: redis.Redis, settings: Settings
) -> None:
    review = RedisReviewList(redis_client, settings.key_prefix)
    review.add("req-1", {"id": "req-1", "email": "asked@shop.example", "klicktipp_id": "77",
                         "source": "hubspot", "crm_contact_id": "701", "received_at": NOW})  # fmt: skip
    page = viewer.get("/review")
    assert 'class="review-item" data-id="req-1"' in page.text
    assert "review-done" not in page.text
    assert viewer.post("/review/done", {"id": "req-1"}).status_code == 403
    operator.get("/review")
    done = operator.post("/review/done", {"id": "req-1", "tenant": "default"})
    assert done.status_code == 200
    assert "request req-1 done" in done.text
    assert review.list() == []
    assert RedisAuditLog(redis_client, settings.deployment_prefix).recent()[0].action == "review_done"


def test_pages_set_security_headers_and_keep_personal_data_out_of_titles(
    operator: Client, letters: RedisDeadLetterStore, known_contact: ContactState
) -> None:
    for path in (
        "/",
        "/dead-letters",
        "/dead-letters/letter-1",
        "/contacts",
        "/review",
        "/tenants",
        "/audit",
    ):
        page = operator.get(path)
        assert page.status_code == 200, path
        assert "@" not in TITLE.search(page.text)[1], path
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


def test_the_overview_shows_lanes_budget_dead_letters_and_an_hour_of_charts(
    operator: Client, letters: RedisDeadLetterStore
) -> None:
    page = operator.get("/")
    assert 'tr class="lane" data-lane="live"' in page.text
    assert 'data-lane="bulk"' in page.text
    assert re.search(r"Budget [\d.]+/s \(burst [\d.]+\)", page.text)
    assert re.search(r'class="dl-total">6<', page.text)
    assert page.text.count('<svg class="chart') == 6  # calls, 429s and latency for each lane


@pytest.fixture
def acme(redis_client: redis.Redis, settings: Settings) -> str:
    """A registered tenant with its own password in the environment (never shown) and its letters."""
    from ktsync.config.registry import RedisTenantRegistry
    from ktsync.core.tenants import tenant_prefix

    document = {
        "credentials": {"KLICKTIPP_USERNAME": "acme-login", "KLICKTIPP_PASSWORD": {"env": "ACME_PASSWORD"}},
        "rate": {"per_second": 3, "burst": 6},
    }
    RedisTenantRegistry(redis_client, settings.deployment_prefix).put("acme", document)
    store = RedisDeadLetterStore(redis_client, tenant_prefix(settings.deployment_prefix, "acme"))
    store.add(letter(9, "conflict", 507, tenant="acme"))
    return "acme"


@pytest.fixture
def tenant_base(settings: Settings, redis_client: redis.Redis, env: dict[str, str]) -> Iterator[str]:
    with serving(console_of(settings, redis_client, {**env, "ACME_PASSWORD": "acme-secret-password"})) as url:
        yield url


def test_tenants_are_listed_with_budget_and_letters_and_nothing_secret(
    tenant_base: str, acme: str, letters: RedisDeadLetterStore
) -> None:
    client = Client(tenant_base)
    client.login(OPERATOR)
    page = client.get("/tenants")
    assert 'class="tenant" data-tenant="default"' in page.text
    assert 'data-tenant="acme"' in page.text
    row = page.text.split('data-tenant="acme">', 1)[1].split("</tr>", 1)[0]
    assert "<td>2.91/s, burst 5</td>" in row, row  # 3/s and 6 less the limiter's safety margin
    assert "acme-secret-password" not in page.text
    assert "op-secret-1" not in page.text
    overview = client.get("/")
    assert 'section class="tenant" data-tenant="acme"' in overview.text
    assert "acme-secret-password" not in overview.text


def test_each_tenants_dead_letters_are_its_own(
    tenant_base: str, acme: str, letters: RedisDeadLetterStore
) -> None:
    client = Client(tenant_base)
    client.login(OPERATOR)
    assert groups(client.get("/dead-letters", params={"tenant": "acme"}).text) == {("conflict", "507"): 1}
    assert ("conflict", "507") not in groups(client.get("/dead-letters").text)
    assert "letter-9" in client.get("/dead-letters/letter-9", params={"tenant": "acme"}).text
    assert client.get("/dead-letters/letter-9").status_code == 404


def test_behind_a_proxy_its_header_names_the_user_and_only_listed_operators_act(
    settings: Settings, redis_client: redis.Redis, env: dict[str, str], letters: RedisDeadLetterStore
) -> None:
    proxy = {"KTSYNC_CONSOLE_PROXY_HEADER": "X-Forwarded-User", "KTSYNC_CONSOLE_PROXY_OPERATORS": "alice"}
    with serving(console_of(settings, redis_client, env, **proxy)) as url:
        alice = requests.get(url + "/dead-letters", headers={"X-Forwarded-User": "alice"}, timeout=10)
        assert 'id="whoami">alice (operator)' in alice.text
        assert "replay-group" in alice.text
        dave = Client(url)
        dave.http.headers["X-Forwarded-User"] = "dave"
        page = dave.get("/dead-letters")
        assert 'id="whoami">dave (read-only)' in page.text
        assert "replay-group" not in page.text
        assert dave.post("/dead-letters/purge", {"reason": "validation"}).status_code == 403
        anonymous = requests.get(url + "/", allow_redirects=False, timeout=10)
        assert anonymous.status_code == 303  # no header, no user
    assert letters.count() == 6


def test_no_personal_data_reaches_the_log(
    operator: Client,
    letters: RedisDeadLetterStore,
    known_contact: ContactState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    operator.get("/contacts")
    assert 'id="contact"' in operator.post("/contacts/lookup", {"query": "known@shop.example"}).text
    operator.get("/dead-letters")
    assert "2 purged" in operator.post("/dead-letters/purge", {"reason": "validation", "code": "8"}).text
    assert "1 replayed" in operator.post("/dead-letters/replay", [("ids", "letter-0")]).text
    assert "op purge tenant=default count=2 reason=validation code=8" in caplog.text
    assert "op replay tenant=default count=1 1 chosen" in caplog.text
    assert "@shop.example" not in caplog.text
    assert "op-secret-1" not in caplog.text


def test_a_group_without_a_code_is_exactly_its_letters(
    operator: Client, letters: RedisDeadLetterStore, redis_client: redis.Redis, settings: Settings
) -> None:
    # Given a letter of the same reason that KlickTipp did give a code
    letters.add(letter(7, "retries_exhausted", 500))
    page = operator.get("/dead-letters")
    assert groups(page.text)[("retries_exhausted", "")] == 3
    assert groups(page.text)[("retries_exhausted", "500")] == 1
    # When the operator replays the group without a code (its button sends code=none)
    assert 'name="code" value="none"' in page.text
    preview = operator.post("/dead-letters/replay/preview", {"reason": "retries_exhausted", "code": "none"})
    # Then only its three letters are in it
    assert "3 would be replayed, 0 refused" in preview.text
    assert "letter-7" not in preview.text
    done = operator.post("/dead-letters/replay", {"reason": "retries_exhausted", "code": "none"})
    assert "3 replayed, 0 refused" in done.text
    assert _bulk_pending(redis_client, settings) == 3
    (logged,) = RedisAuditLog(redis_client, settings.deployment_prefix).recent()
    assert logged.detail == "reason=retries_exhausted code=none"
    filtered = operator.get("/dead-letters", params={"code": "none"})
    assert ("retries_exhausted", "500") not in groups(filtered.text)
    assert groups(filtered.text)[("invalid_message", "")] == 1
