"""How far this node's wall clock is from its peers' (design §7 rule 8: shown, never trusted).

No safety rule reads this: leases count on monotonic clocks. It is here so
that people see a node whose clock is off (an NTP step, a VM restored from
a snapshot, a host set by hand) before it matters for what wall time is
still used for: order times, reports, logs and the signature window.

Samples come from what peers tell us of their wall clock: the timestamp of
every signed call we receive (one-way: off by the call's delay, milliseconds
on a LAN), and the `wall` field of /health answers we fetch (against the
midpoint of our request). The offset shown is the median of the recent
samples: ours minus theirs, so a node 4 s ahead of the rest shows +4, while
its peers, each of which sees mostly the others, show about 0.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

NOTICEABLE = 1.0  # seconds: beyond this, /health, the cluster page and logs say so
KEPT = 60  # recent samples
FRESH = 30.0  # seconds a sample counts


class ClockWatch:
    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()

    def add(self, ours_minus_theirs: float) -> None:
        if ours_minus_theirs == ours_minus_theirs and abs(ours_minus_theirs) < 1e9:
            with self._lock:
                self._samples.append((time.monotonic(), ours_minus_theirs))

    def heard(self, their_wall: float, sent_at: float, answered_at: float) -> None:
        """A peer's wall time, read between our `sent_at` and `answered_at` (our wall)."""
        self.add((sent_at + answered_at) / 2 - their_wall)

    def offset(self) -> float | None:
        """Seconds our wall clock is ahead of our peers' (median), None before any sample."""
        since = time.monotonic() - FRESH
        with self._lock:
            recent = [value for at, value in self._samples if at >= since]
        return statistics.median(recent) if recent else None

    def view(self) -> float | None:
        offset = self.offset()
        return None if offset is None else round(offset, 3)


def noticeable(offset: float | None) -> bool:
    return offset is not None and abs(offset) > NOTICEABLE
