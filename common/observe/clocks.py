"""How far this node's wall clock is from its peers' (design §7 rule 8: shown, never trusted).

No safety rule reads this: leases count on monotonic clocks. It is here so
that people see a node whose clock is off (an NTP step, a VM restored from
a snapshot, a host set by hand) before it matters for what wall time is
still used for: order times, reports, logs and the signature window.

Samples come from what peers tell us of their wall clock: the timestamp of
every signed call we receive (one-way: off by the call's delay, milliseconds
on a LAN), and the `wall` field of /health answers we fetch (against the
midpoint of our request). The offset shown is the median over peers (each
peer's own median of its recent samples): ours minus theirs, so a node 4 s
ahead of the rest shows +4, while its peers, each of which sees mostly the
others, show about 0. A signed call names its sender in `X-Bazar-Node`
(not signed: this is for people to read, nothing acts on it).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

from common.auth import MAX_SKEW

NOTICEABLE = 1.0  # seconds: beyond this, /health, the cluster page and logs say so
KEPT_PER_PEER = 16  # recent samples of each peer
FRESH = 30.0  # seconds a sample counts


class ClockWatch:
    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}  # per peer
        self._lock = threading.Lock()

    def add(self, ours_minus_theirs: float, source: str = "?") -> None:
        if ours_minus_theirs == ours_minus_theirs and abs(ours_minus_theirs) < 1e9:
            with self._lock:
                kept = self._samples.setdefault(source[:64], deque(maxlen=KEPT_PER_PEER))
                kept.append((time.monotonic(), ours_minus_theirs))

    def heard(self, their_wall: float, sent_at: float, answered_at: float, source: str) -> None:
        """A peer's wall time, read between our `sent_at` and `answered_at` (our wall)."""
        self.add((sent_at + answered_at) / 2 - their_wall, source)

    def offset(self) -> float | None:
        """Seconds our wall clock is ahead of our peers' (None before any sample): the
        median over peers of each one's median, so a chatty peer counts once."""
        since = time.monotonic() - FRESH
        with self._lock:
            each = [[v for at, v in kept if at >= since] for kept in self._samples.values()]
        per_peer = [statistics.median(values) for values in each if values]
        return statistics.median(per_peer) if per_peer else None

    def view(self) -> float | None:
        offset = self.offset()
        return None if offset is None else round(offset, 3)


def noticeable(offset: float | None) -> bool:
    return offset is not None and abs(offset) > NOTICEABLE


def cut_off_by_clock(offset: float | None) -> bool:
    """Our wall clock is so far from our peers' that signed calls between us are refused
    or soon will be (half the signature window): a lease holder cannot replicate then,
    so it steps down rather than hold writes up (`LeaseKeeper.unfit`)."""
    return offset is not None and abs(offset) > MAX_SKEW / 2
