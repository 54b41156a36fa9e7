"""Headless Chromium through Debian's chromedriver, for the /cluster page tests and screenshot."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing() -> str | None:
    """Why a browser cannot be started here (None: it can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            return f"{path} not found (Debian package {package!r})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def start(width: int = 1400, height: int = 1000):
    """A headless Chromium that keeps its console log (`driver.get_log('browser')`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument("--no-proxy-server")  # loopback nodes: never through a proxy
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


class ConsoleUnreadable(AssertionError):
    """The console log could not be read: the test cannot say the page had no errors."""


def console_problems(driver) -> list[str]:
    """Console errors and warnings since the last call, CSP violations among them.

    A log that cannot be read fails the test: "no errors" must mean none were logged."""
    try:
        entries = driver.get_log("browser")
    except Exception as e:
        raise ConsoleUnreadable(f"cannot read the browser console log: {e!r}") from e
    return [
        e["message"]
        for e in entries
        if e.get("level") in ("SEVERE", "WARNING") or "Content Security Policy" in e["message"]
    ]
