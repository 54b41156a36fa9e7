"""Test threads whose errors fail the test: Workers keeps what a thread raised or a hang."""

from __future__ import annotations

import time

import pytest

from tests.support.threads import Workers


def test_workers_report_a_thread_that_died():
    def reader() -> None:
        raise ConnectionError("refused")

    workers = Workers()
    workers.spawn(reader)
    workers.spawn(lambda: None)
    problems = workers.join(timeout=5)
    assert problems == ["reader-0: ConnectionError: refused"]
    with pytest.raises(AssertionError, match="a worker thread failed"):
        workers.join_or_fail(timeout=5)


def test_workers_report_a_thread_that_hangs():
    workers = Workers()
    workers.spawn(time.sleep, 1.0, name="sleeper")
    assert workers.join(timeout=0.05) == ["sleeper: still running 0.05 s after join"]
