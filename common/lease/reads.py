"""Read leases (design §7 rule 7): a copy answers reads only while the primary says so.

The holder grants each copy (backup catalog, front-end cache) a lease in
every push and heartbeat: "valid until wall time T". It records T before
sending, whether or not the message arrives, so it always knows the latest
moment any copy may still answer from old data. A write is acknowledged only
once every copy has it or that copy's lease has run out.

The copy trusts the lease until T minus `margin` (clock skew between nodes).
A lapse means the copy may have missed a change: whatever it cached before
must not be served as fresh again (`grant` tells the caller).
"""

from __future__ import annotations

import threading

from common.lease.clock import Clock


class ReadLease:
    """A copy's own read lease."""

    def __init__(self, clock: Clock, margin: float):
        self.clock = clock
        self.margin = margin
        self.epoch = 0
        self.until = 0.0  # wall time, as granted
        # The same end as a monotonic deadline, fixed when the grant arrives: a
        # wall clock stepped backwards later cannot stretch the lease.
        self._deadline = 0.0
        self.lapses = 0  # how many times the lease ran out (or was never held)
        self._held = False
        self._lock = threading.Lock()

    def valid(self) -> bool:
        return self.clock.mono() < self._deadline

    def grant(self, epoch: int, until: float) -> bool:
        """Take a grant; True if it follows a lapse (the caller drops what it cached)."""
        with self._lock:
            lapsed = not self._held or not self.valid() or epoch != self.epoch
            if lapsed:
                self.lapses += 1
            self.epoch, self.until, self._held = epoch, until, True
            self._deadline = self.clock.mono() + (until - self.margin - self.clock.wall())
            return lapsed

    def end(self) -> None:
        """Stop trusting the lease now (a newer epoch was seen, or a resync began)."""
        with self._lock:
            self.until, self._deadline, self._held = 0.0, 0.0, False

    def remaining(self) -> float:
        return max(0.0, self._deadline - self.clock.mono())


class Grants:
    """The holder's record of the read leases it handed out, one per copy.

    `offer` records the lease's end *before* the message goes out: whether it
    arrives or not, no copy can hold a lease past `expiry[copy]`. A copy that
    missed an update is `behind`: it gets no new lease until it has caught up,
    and writes wait until its old lease has run out.
    """

    def __init__(self, clock: Clock, duration: float):
        self.clock = clock
        self.duration = duration
        self.expiry: dict[str, float] = {}
        self.behind: set[str] = set()
        self._lock = threading.Lock()

    def offer(self, copy: str) -> float | None:
        with self._lock:
            if copy in self.behind:
                return None
            until = self.clock.wall() + self.duration
            self.expiry[copy] = max(self.expiry.get(copy, 0.0), until)
            return until

    def miss(self, copy: str) -> None:
        with self._lock:
            self.behind.add(copy)

    def caught_up(self, copy: str) -> None:
        with self._lock:
            self.behind.discard(copy)

    def lapsed(self, copy: str) -> bool:
        return self.clock.wall() >= self.expiry.get(copy, 0.0)

    def wait_for_behind(self, sleep, limit: float) -> float:
        """Until every behind copy's lease has run out (at most `limit` s); seconds waited."""
        with self._lock:
            end = max((self.expiry.get(c, 0.0) for c in self.behind), default=0.0)
        pause = min(max(0.0, end - self.clock.wall()), limit)
        if pause:
            sleep(pause)
        return pause
