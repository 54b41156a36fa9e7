"""Time behind a seam: lease logic never reads the clock directly, so tests can step it."""

from __future__ import annotations

import time


class Clock:
    """Wall time (compared across nodes) and monotonic time (local deadlines)."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that moves only when told to; wall and monotonic move together."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
