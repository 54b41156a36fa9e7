"""Time behind a seam: lease logic never reads the clock directly, so tests can step it.

Each node has its own clock. Lease rules read only `mono()`, and compare
its readings only with other readings of the same clock (design §7 rule 8);
`wall()` is for what people read and for the signature window.
"""

from __future__ import annotations

import time


class Clock:
    """Wall time (for people and signatures) and monotonic time (every lease rule)."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """One node's clock that moves only when told to.

    `advance` lets real time pass: both readings move, the monotonic one at
    `rate` (a clock running fast or slow: drift). `jump_wall` steps the wall
    clock alone, forward or back, as NTP or an operator would; `wall_offset`
    starts it off by that much. Monotonic readings of two FakeClocks share
    no origin, as on real machines.
    """

    def __init__(self, start: float = 1_000_000.0, rate: float = 1.0, wall_offset: float = 0.0):
        self.now = start  # monotonic reading
        self.wall_now = start + wall_offset
        self.rate = rate

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds * self.rate
        self.wall_now += seconds * self.rate

    def jump_wall(self, seconds: float) -> None:
        self.wall_now += seconds
