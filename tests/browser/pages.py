"""What a browser test does on the console's pages: log in, wait for elements, reload until, shoot."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 15.0


def wait_css(driver: WebDriver, selector: str, timeout: float = WAIT) -> WebElement:
    """The first element matching ``selector`` once it is on the page."""
    found: WebElement = WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, selector)),
        message=f"no {selector!r} on {driver.current_url}",
    )
    return found


def all_css(driver: WebDriver, selector: str) -> list[WebElement]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _gone(element: WebElement) -> Callable[[WebDriver], bool]:
    """Whether ``element`` left the document: Selenium's ``staleness_of``, plus the "unknown error"
    chromedriver sometimes answers for an element whose page is being replaced ("Node with given id
    does not belong to the document", seen here once in CI)."""
    stale = ec.staleness_of(element)

    def check(driver: WebDriver) -> bool:
        try:
            return bool(stale(driver))
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    return check


def click_and_load(driver: WebDriver, element: WebElement, then: str) -> WebElement:
    """Click something that submits or navigates, and wait for the next page's ``then`` element."""
    element.click()
    WebDriverWait(driver, WAIT).until(_gone(element), message="the page did not change")
    return wait_css(driver, then)


def login(driver: WebDriver, base: str, user: str, password: str) -> None:
    """Fill in the login form and submit it (lands on the overview, or on the login page's error)."""
    driver.get(f"{base}/login")
    wait_css(driver, "#login-form")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    click_and_load(driver, driver.find_element(By.ID, "login-submit"), "#overview, .flash.error")


def reload_until(
    driver: WebDriver, url: str, done: Callable[[WebDriver], Any], *, timeout: float, every: float = 1.0
) -> Any:
    """Load ``url`` again and again until ``done(driver)`` is truthy (a server-rendered page)."""
    deadline = time.monotonic() + timeout
    while True:
        driver.get(url)
        value = done(driver)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{url}: condition not met within {timeout}s (last value: {value!r})")
        time.sleep(every)


def session_of(driver: WebDriver) -> requests.Session:
    """A requests session holding the browser's cookies (the same logged-in user)."""
    session = requests.Session()
    for cookie in driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"], path=cookie.get("path", "/"))
    return session


def hidden_fields(form: WebElement) -> dict[str, str]:
    """The form's hidden inputs (its CSRF token, and whatever names the selection)."""
    return {
        str(field.get_attribute("name")): str(field.get_attribute("value"))
        for field in form.find_elements(By.CSS_SELECTOR, "input[type=hidden]")
        if field.get_attribute("name")
    }


class Shots:
    """PNG screenshots of one test, named ``<test>-<name>.png`` in one directory."""

    def __init__(self, driver: WebDriver, directory: Path, test: str) -> None:
        self.driver, self.directory, self.test = driver, directory, test
        self.saved: list[Path] = []

    def __call__(self, name: str, *, to: Path | None = None) -> Path:
        path = to or self.directory / f"{self.test}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        self.saved.append(path)
        return path

    def last(self) -> None:
        """The page as the test left it (passed or failed); never hides the test's own error."""
        with suppress(WebDriverException, AssertionError, OSError):
            self("last")
