"""The browser tests' console check fails loudly when it cannot read the log."""

from __future__ import annotations

import pytest

from tests.browser import chromium


class Driver:
    def __init__(self, entries=None, error: Exception | None = None):
        self.entries, self.error = entries or [], error

    def get_log(self, kind: str) -> list[dict]:
        assert kind == "browser"
        if self.error is not None:
            raise self.error
        return self.entries


def test_a_console_log_that_cannot_be_read_is_a_failure_not_no_errors():
    driver = Driver(error=RuntimeError("unknown command: log"))
    with pytest.raises(AssertionError, match="cannot read the browser console log"):
        chromium.console_problems(driver)


def test_errors_warnings_and_csp_reports_are_problems():
    driver = Driver(
        [
            {"level": "SEVERE", "message": "cluster.js 3:1 TypeError"},
            {"level": "WARNING", "message": "slow"},
            {"level": "INFO", "message": "Refused: Content Security Policy directive"},
            {"level": "INFO", "message": "loaded"},
        ]
    )
    assert len(chromium.console_problems(driver)) == 3
