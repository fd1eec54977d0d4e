"""The operator console in a real browser: log in, replay dead letters, look a contact up, read-only.

Everything behind the pages is real: ``ktsync console`` and ``ktsync worker`` processes, Redis and the
fake KlickTipp over loopback. Dead letters are made by the worker itself (KlickTipp failing), so a
replay from the page really syncs the contacts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.pages import (
    Shots,
    all_css,
    click_and_load,
    hidden_fields,
    login,
    reload_until,
    session_of,
    wait_css,
)
from tests.browser.stack import OPERATOR, VIEWER, Stack
from tests.integration.sync_helpers import upsert

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

EXHAUSTED = 'tr.dl-group[data-reason="retries_exhausted"]'
REPLAY_TIMEOUT = 60.0
README_SHOTS = os.environ.get("KTSYNC_README_SHOTS") == "1"
DOCS = Path(__file__).resolve().parents[2] / "docs"
NAV = {
    "overview": "/",
    "dead-letters": "/dead-letters",
    "contacts": "/contacts",
    "review": "/review",
    "tenants": "/tenants",
    "audit": "/audit",
}


@pytest.fixture(autouse=True)
def no_dead_letters(stack: Stack) -> None:
    """Each test starts with an empty dead-letter queue (and KlickTipp without faults)."""
    stack.clear_dead_letters()
    stack.fake.faults(error_rate=0.0)


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_overview(
    stack: Stack, driver: WebDriver, shot: Shots
) -> None:
    user, password = OPERATOR
    login(driver, stack.base_url, user, "not-the-password")
    assert wait_css(driver, ".flash.error").is_displayed()
    assert all_css(driver, "#overview") == []
    shot("wrong-password")
    driver.get_log("browser")  # drains the log: the refused login's 401 is expected

    login(driver, stack.base_url, user, password)

    wait_css(driver, "#overview")
    tenant = driver.find_element(By.CSS_SELECTOR, 'section.tenant[data-tenant="default"]')
    lanes = {row.get_attribute("data-lane") for row in tenant.find_elements(By.CSS_SELECTOR, "tr.lane")}
    assert lanes == {"live", "bulk"}
    assert all_css(driver, "svg.chart"), "no chart on the overview"
    assert driver.find_element(By.ID, "whoami").text.strip() == f"{user} (operator)"
    for page in NAV:
        assert (
            driver.find_element(By.ID, f"nav-{page}").get_attribute("href") == f"{stack.base_url}{NAV[page]}"
        )
    shot("overview")
    # The stylesheet and the refresh script load under the console's Content-Security-Policy, and the
    # overview refreshes itself in place (its timestamp moves on without a reload)
    assert (
        driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        == "rgb(246, 247, 249)"
    )
    first = driver.find_element(By.CSS_SELECTOR, "#overview h1 small").text
    driver.execute_script("window.__no_reload = true")
    # (the element read may be swapped out between finding it and reading its text: seen once in CI)
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#overview h1 small").text != first
    )
    assert driver.execute_script("return window.__no_reload") is True  # swapped in, not reloaded
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], severe


def test_a_dead_letter_group_is_replayed_after_its_preview_and_leaves_once_synced(
    stack: Stack, driver: WebDriver, shot: Shots
) -> None:
    # Given three contacts dead-lettered because KlickTipp kept failing, and KlickTipp healthy again
    messages = stack.dead_letter_server_errors(3, name="replay")
    login(driver, stack.base_url, *OPERATOR)

    # When the operator opens the dead letters
    driver.find_element(By.ID, "nav-dead-letters").click()
    group = wait_css(driver, EXHAUSTED)
    assert group.find_element(By.CSS_SELECTOR, ".dl-count").text.strip() == "3"
    assert len(all_css(driver, "tr.dl-entry")) == 3
    shot("group")

    # And looks at one letter: its message, error, attempts and history, under its id alone
    entry = all_css(driver, "tr.dl-entry")[0]
    letter_id = str(entry.get_attribute("data-id"))
    click_and_load(driver, entry.find_element(By.CSS_SELECTOR, "a.dl-entry-link"), "#dead-letter")
    assert letter_id in driver.current_url
    assert "@faults.example" in driver.find_element(By.ID, "dl-message").text
    assert "@" not in driver.current_url
    assert driver.find_element(By.ID, "dl-attempts").text.strip() == "2"
    for part in ("dl-error", "dl-history"):
        driver.find_element(By.ID, part)
    shot("letter")
    driver.find_element(By.ID, "nav-dead-letters").click()
    group = wait_css(driver, EXHAUSTED)

    # And replays the group: the preview lists its letters first
    click_and_load(driver, group.find_element(By.CSS_SELECTOR, "button.replay-group"), "#replay-preview")
    assert len(all_css(driver, "li.preview-item.would")) == 3
    assert all_css(driver, "li.preview-item.refused") == []
    assert "3 would be replayed, 0 refused" in driver.find_element(By.ID, "preview-summary").text
    shot("preview")
    click_and_load(driver, driver.find_element(By.ID, "replay-confirm"), "#replay-result")
    assert "3 replayed, 0 refused" in driver.find_element(By.ID, "replay-summary").text
    shot("replayed")

    # Then the group leaves the list once the worker has synced the contacts
    reload_until(
        driver,
        f"{stack.base_url}/dead-letters",
        lambda d: not all_css(d, EXHAUSTED) and all_css(d, "#dead-letters"),
        timeout=REPLAY_TIMEOUT,
    )
    assert all_css(driver, "#dead-letters .empty")
    shot("empty")
    # And KlickTipp has every one of them
    emails = {c["email"] for c in stack.fake.state()["contacts"]}
    assert {m["email"] for m in messages} <= emails
    # And the audit log names who replayed
    driver.find_element(By.ID, "nav-audit").click()
    entries = [
        row.text for row in wait_css(driver, "#audit").find_elements(By.CSS_SELECTOR, "tr.audit-entry")
    ]
    assert any(OPERATOR[0] in text and "replay" in text.lower() for text in entries), entries
    shot("audit")


def test_a_contact_is_looked_up_by_email_without_the_address_in_any_url(
    stack: Stack, driver: WebDriver, shot: Shots
) -> None:
    # Given a contact the worker has synced
    email = "lookup.person@shop.example"
    stack.sync(upsert("lookup-1", email, firstname="Lou", lifecyclestage="lead"))
    login(driver, stack.base_url, *OPERATOR)

    # When the operator looks it up by its e-mail address
    driver.find_element(By.ID, "nav-contacts").click()
    wait_css(driver, "#lookup-form")
    driver.find_element(By.ID, "lookup-query").send_keys(email)
    shot("form")
    click_and_load(driver, driver.find_element(By.ID, "lookup-submit"), "#contact, #contact-missing")

    # Then its state and timeline are shown, and the address is in neither the URL nor the title
    assert all_css(driver, "#contact-missing") == []
    assert driver.find_element(By.ID, "contact-state").text.strip()
    assert all_css(driver, "#contact-timeline li"), "empty timeline"
    assert all_css(driver, "#contact-dead-letters")
    assert email not in driver.current_url.lower()
    assert email not in driver.title.lower()
    shot("contact")


def test_a_read_only_user_sees_no_replay_button_and_is_refused_a_replay(
    stack: Stack, driver: WebDriver, shot: Shots
) -> None:
    # Given a dead letter, and the replay form as an operator sees it
    stack.dead_letter_server_errors(1, name="readonly")
    login(driver, stack.base_url, *OPERATOR)
    driver.get(f"{stack.base_url}/dead-letters")
    button = wait_css(driver, f"{EXHAUSTED} button.replay-group")
    form = button.find_element(By.XPATH, "./ancestor::form")
    action = str(form.get_attribute("action"))
    selection = {k: v for k, v in hidden_fields(form).items() if "csrf" not in k.lower()}
    driver.delete_all_cookies()

    # When a read-only user opens the dead letters
    login(driver, stack.base_url, *VIEWER)
    assert driver.find_element(By.ID, "whoami").text.strip() == f"{VIEWER[0]} (read-only)"
    driver.get(f"{stack.base_url}/dead-letters")
    wait_css(driver, EXHAUSTED)

    # Then there is no replay (or purge) button
    for selector in ("button.replay-group", "button.purge-group", "button#replay-selected", ".dl-select"):
        assert all_css(driver, selector) == [], selector
    shot("no-buttons")

    # And a replay posted anyway, with the viewer's own session and CSRF token, is refused
    token = hidden_fields(driver.find_element(By.ID, "logout").find_element(By.XPATH, "./ancestor::form"))
    answer = session_of(driver).post(action, data={**token, **selection}, timeout=10)
    assert answer.status_code == 403, answer.text[:500]
    assert 'id="forbidden"' in answer.text
    # (and in the browser too: the same form, crafted on the page and submitted)
    driver.execute_script(
        """
        const form = document.createElement("form");
        form.method = "post"; form.action = arguments[0];
        for (const [name, value] of Object.entries(arguments[1])) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
        """,
        action,
        {**token, **selection},
    )
    refusal = wait_css(driver, "#forbidden").text
    assert "csrf" not in refusal.lower(), f"refused for its token, not for the role: {refusal}"
    shot("forbidden")
    assert stack.dead_letters.count() == 1


def test_screenshots_of_the_overview_and_the_dead_letters(
    stack: Stack, driver: WebDriver, shot: Shots
) -> None:
    """With KTSYNC_README_SHOTS=1 the README's pictures (docs/console-*.png) are made again."""
    stack.dead_letter_server_errors(4, name="shots")
    stack.dead_letter_mapping("shots-mapping")
    if README_SHOTS:
        _an_hour_of_history(stack)
    login(driver, stack.base_url, *OPERATOR)
    wait_css(driver, "section.tenant")
    overview = shot("overview", to=DOCS / "console-overview.png" if README_SHOTS else None)

    driver.get(f"{stack.base_url}/dead-letters")
    wait_css(driver, EXHAUSTED)
    assert len(all_css(driver, "tr.dl-group")) == 2
    letters = shot("dead-letters", to=DOCS / "console-dead-letters.png" if README_SHOTS else None)

    for path in (overview, letters):
        assert _png_size(path) == (1400, 1000), path


def _an_hour_of_history(stack: Stack) -> None:
    """For the README's picture only: an hour of charts as a busy afternoon draws them (a bulk import
    from minute 15 to 45 under a live trickle, a burst of 429s), written as workers write them."""
    import math
    import time

    from ktsync.core import series

    now = time.time()
    pipe = stack.client.pipeline(transaction=False)
    for minute in range(60, 0, -1):
        at, age = now - minute * series.STEP, 60 - minute
        importing = 15 <= age <= 45
        live = 20 + 12 * math.sin(age / 6)
        bulk = 240 if importing else 0
        series.stage(pipe, stack.settings.key_prefix, "live", at, calls=int(live * 2.2), done=int(live),
                     latency=0.4 + (0.3 if importing else 0.0))  # fmt: skip
        series.stage(pipe, stack.settings.key_prefix, "bulk", at, calls=int(bulk * 1.1), done=bulk,
                     throttled=9 if age in (30, 31) else 0, latency=40.0 + age if importing else None)  # fmt: skip
    pipe.execute()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
