"""Find Debian's Chromium and its chromedriver, and start one headless browser (never downloads one).

Selenium Manager (which would fetch a browser or driver from the network) never runs: the binary and
the driver are always given by path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_ENV = "KTSYNC_CHROMIUM"
CHROMEDRIVER_ENV = "KTSYNC_CHROMEDRIVER"
MISSING = "Chromium not installed (apt package chromium + chromium-driver): `make test-browser` installs it"
WIDTH, HEIGHT = 1400, 1000
# No network here: without the background-networking flags Chromium keeps dialing refused connections.
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WIDTH},{HEIGHT}",
)


@dataclass(frozen=True)
class Binaries:
    chromium: str
    chromedriver: str


def _locate(env_name: str, default: str, *names: str) -> str | None:
    given = os.environ.get(env_name)
    if given:  # an override that points nowhere is "missing", not a silent fallback
        return given if Path(given).is_file() else None
    if Path(default).is_file():
        return default
    return next((found for name in names if (found := shutil.which(name))), None)


def find_binaries() -> Binaries | str:
    """The browser and driver to use, or why there are none (the skip reason)."""
    chromium = _locate(CHROMIUM_ENV, "/usr/bin/chromium", "chromium", "chromium-browser")
    driver = _locate(CHROMEDRIVER_ENV, "/usr/bin/chromedriver", "chromedriver")
    if chromium and driver:
        return Binaries(chromium, driver)
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    return (
        f"{MISSING} (missing: {', '.join(missing)}; ${CHROMIUM_ENV} / ${CHROMEDRIVER_ENV} override the paths)"
    )


@contextmanager
def headless_chromium(binaries: Binaries) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with a throwaway profile, its viewport exactly WIDTH x HEIGHT."""
    os.environ.setdefault("SE_AVOID_STATS", "true")
    with tempfile.TemporaryDirectory(prefix="ktsync-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binaries.chromium
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP violations, script errors
        for argument in (*ARGUMENTS, f"--user-data-dir={profile}"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(executable_path=binaries.chromedriver), options=options)
        try:
            # --window-size sizes the window, not the page: pin the viewport so screenshots are 1400x1000.
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            )
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()
