"""Timing a call over and over, for the measuring scripts (milliseconds per call)."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(call: Callable[[], object], count: int) -> list[float]:
    """Milliseconds each of `count` calls took."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return took
