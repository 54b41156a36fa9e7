"""Wrong passwords, counted per name and per address; too many lock either out (429).

Counted on this front-end's own monotonic clock, so a wrong wall clock changes
nothing. Each front-end counts its own tries (docs/staff.md). Memory is bounded:
at most `MAX_KEYS` names and addresses are remembered, each for one window.
"""

from __future__ import annotations

import math
import time

from cachetools import TTLCache

MAX_KEYS = 100_000


class Lockout:
    def __init__(self, limit: int, window: float, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        # key -> (failures, when the first counted one was, locked until)
        self._seen: TTLCache = TTLCache(maxsize=MAX_KEYS, ttl=2 * window, timer=clock)

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, None if it may now."""
        failures, since, until = self._seen.get(key, (0, 0.0, 0.0))
        left = until - self.clock()
        return math.ceil(left) if left > 0 else None

    def failed(self, key: str) -> None:
        now = self.clock()
        failures, since, until = self._seen.get(key, (0, now, 0.0))
        if now - since > self.window:  # the earlier failures are too old to count
            failures, since = 0, now
        failures += 1
        until = now + self.window if failures >= self.limit else 0.0
        self._seen[key] = (0, now, until) if until else (failures, since, until)

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)
