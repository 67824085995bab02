"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver, driven by
selenium, with no download of any browser or driver and no network but localhost.

`.ci/run` installs the two Debian packages (`apt-get install chromium chromium-driver`).
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
# The resolver rule makes every host but localhost unresolvable, so a test gives the same
# answer on a machine with internet access as on one without.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _refuse_selenium_manager(*args, **kwargs):
    raise AssertionError(
        "selenium tried to run selenium-manager (which may download a browser or driver); "
        f"the tests must use {CHROMIUM} and {CHROMEDRIVER}"
    )


@contextmanager
def chromium(profile_dir: Path, width: int = 1280, height: int = 1024):
    """A selenium Chrome driver on Debian's Chromium, logging the browser console."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the browser tests need Debian's Chromium and "
            "ChromeDriver: `apt-get install -y chromium chromium-driver` (.ci/run does this)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    os.environ["SE_OFFLINE"] = "true"  # belt and braces: selenium-manager must not run at all
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(profile_dir.parent / "chromedriver.log")
    )
    with mock.patch.object(SeleniumManager, "binary_paths", _refuse_selenium_manager):
        driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()


def severe_console_entries(driver) -> list[str]:
    """The console's SEVERE entries since the last call (JS errors, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
