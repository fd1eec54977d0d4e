"""Browser-test fixtures: headless Chromium, the console's stack, screenshots; skipped without Chromium.

Every test here is marked ``browser`` (and ``slow``, ``integration``). Where Chromium or chromedriver
is missing they are all skipped at collection, with the reason, before any process starts; the end
of the pytest run says in one line whether browser tests ran or why not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from selenium.webdriver.remote.webdriver import WebDriver

from fake_klicktipp.testing import RunningFake
from ktsync.core.redis_server import RedisHandle
from tests.browser.chromium import Binaries, find_binaries, headless_chromium
from tests.browser.pages import Shots
from tests.browser.stack import Stack, running_stack
from tests.conftest import RUN_ID

SCREENSHOT_ENV = "KTSYNC_SCREENSHOT_DIR"
DEFAULT_SCREENSHOTS = Path(__file__).with_name("screenshots")
_FOUND = find_binaries()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if isinstance(_FOUND, str):
        skip = pytest.mark.skip(reason=_FOUND)
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: TerminalReporter) -> Iterator[None]:
    """One unmistakable line: did the browser tests run, and if not, why (after the ``-ra`` summary)."""
    yield
    outcomes = {
        name: [r for r in terminalreporter.stats.get(name, []) if "browser" in getattr(r, "keywords", {})]
        for name in ("passed", "failed", "error", "skipped")
    }
    counts = {name: len(reports) for name, reports in outcomes.items() if reports}
    if not counts:
        line, markup = "BROWSER TESTS NOT RUN: none selected", {"yellow": True}
    elif set(counts) == {"skipped"}:
        line = f"BROWSER TESTS SKIPPED ({counts['skipped']}): {_skip_reason(outcomes['skipped'][0])}"
        markup = {"yellow": True, "bold": True}
    else:
        line = "BROWSER TESTS RAN: " + ", ".join(f"{n} {name}" for name, n in counts.items())
        markup = {"red": True, "bold": True} if {"failed", "error"} & set(counts) else {"green": True}
    terminalreporter.write_sep("=", line, **markup)
    return None


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]).removeprefix("Skipped: ") if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed browser test's report ends with what the console and the worker logged."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, Stack):
        for log in ("console.log", "worker.log"):
            report.sections.append((f"ktsync {log} (last lines)", stack.log_tail(log)))
    return report


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    if isinstance(_FOUND, str):
        pytest.skip(_FOUND)
    return _FOUND


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    directory = Path(os.environ.get(SCREENSHOT_ENV) or DEFAULT_SCREENSHOTS)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_handle: RedisHandle, fake_server: RunningFake
) -> Iterator[Stack]:
    """Redis, the fake KlickTipp, a ``ktsync worker`` and a ``ktsync console`` for the whole module."""
    namespace = f"ktsync-test-{RUN_ID}-browser-{uuid.uuid4().hex[:6]}"
    with running_stack(
        tmp_path_factory.mktemp("browser-stack"),
        namespace=namespace,
        redis_handle=redis_handle,
        fake=fake_server.control,
    ) as running:
        yield running


@pytest.fixture
def driver(binaries: Binaries) -> Iterator[WebDriver]:
    """A fresh headless Chromium per test (no cookies carried over)."""
    with headless_chromium(binaries) as chromium:
        yield chromium


@pytest.fixture
def shot(driver: WebDriver, screenshot_dir: Path, request: pytest.FixtureRequest) -> Iterator[Shots]:
    """``shot("name")`` saves the page as ``<test>-name.png``; ``<test>-last.png`` is saved at the end."""
    shots = Shots(driver, screenshot_dir, request.node.name)
    yield shots
    shots.last()
