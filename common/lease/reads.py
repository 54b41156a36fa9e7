"""Read leases (design §7 rules 7 and 8): a copy answers reads only while the holder says so.

No wall clock is compared between two nodes; each side counts on its own
monotonic clock, and the copy starts counting from a moment it KNOWS came
before the holder recorded the grant:

1. Every answer a copy (backup catalog, front-end) gives the holder carries a
   *stamp*: the copy's own monotonic reading, and a token naming this run of
   the copy's process (readings of another run mean nothing here).
2. The holder grants a lease in a later push or heartbeat by sending back
   the newest stamp it got, with the lease's length L. It records "this copy
   may answer until my now + L" BEFORE the message leaves, and grants only
   while its own write lease holds at that moment.
3. The copy trusts the lease until stamp + L x (1 - max_drift) on its own
   clock. The stamp was taken before the holder received it, so before the
   holder recorded the grant: the copy's lease ends before the holder's
   record says, however long the message took, as long as the two clocks'
   rates differ by less than max_drift. No bound on message delay is needed;
   a late message just grants less (or nothing).

So a holder that waits until a copy has a write or that copy's record has
run out (`Grants.lapsed`) never acknowledges a write that copy could still
hide. A lapse means the copy may have missed a change: whatever it cached
before must not be served as fresh again (`ReadLease.grant` tells the caller).

A new holder does not know what an older holder granted. Every grant of
epoch E ended within L of E's write lease ending, which came before the new
holder could acquire; so on gaining, the new holder records every copy as
possibly answering until its now + L x (1 + max_drift) (`Grants.gained`), and
a copy that has not heard of the new epoch holds its writes back that long.
"""

from __future__ import annotations

import secrets
import threading

from common.lease.clock import Clock


class ReadLease:
    """A copy's own read lease."""

    def __init__(self, clock: Clock, max_drift: float = 0.01, longest: float = float("inf")):
        self.clock = clock
        self.max_drift = max_drift
        self.longest = longest  # a grant longer than our own config's lease is cut to it
        self.run = secrets.token_hex(8)  # names this process's monotonic clock
        self.epoch = 0
        self._deadline = 0.0  # monotonic
        self.lapses = 0  # how many times the lease ran out (or was never held)
        self._held = False
        self.retired = False  # set by `retire`: this process takes no lease any more
        self._lock = threading.Lock()

    def stamp(self) -> dict:
        """Put in every answer to the holder: a moment before it can record a grant."""
        return {"run": self.run, "at": self.clock.mono()}

    def valid(self) -> bool:
        return self.clock.mono() < self._deadline

    def grant(self, epoch: int, lease: dict) -> bool:
        """Take a grant; True if it follows a lapse (the caller drops what it cached).

        A grant that names another run's stamp or a moment still to come is
        not ours to trust: it changes nothing.
        """
        now = self.clock.mono()
        at, length = lease.get("at"), lease.get("length")
        if self.retired:
            return False
        if lease.get("run") != self.run or not _number(at) or not _number(length) or at > now:
            return False
        deadline = at + min(length, self.longest) * (1 - self.max_drift)
        with self._lock:
            lapsed = not self._held or not self.valid() or epoch != self.epoch
            if lapsed:
                self.lapses += 1
                self._deadline = deadline
            else:
                self._deadline = max(self._deadline, deadline)
            self.epoch, self._held = epoch, True
            return lapsed

    def end(self) -> None:
        """Stop trusting the lease now (a newer epoch was seen, or a resync began)."""
        with self._lock:
            self._deadline, self._held = 0.0, False

    def retire(self) -> None:
        """End the lease for good: this process is handing over to another one that
        answers under the same name (a front-end upgraded in place), and a message for
        that name may reach either of the two. So the old one trusts no grant again."""
        with self._lock:
            self.retired = True
            self._deadline, self._held = 0.0, False

    def remaining(self) -> float:
        return max(0.0, self._deadline - self.clock.mono())

    def ended_at(self) -> float:
        """The monotonic moment the lease stopped (or will stop) being valid."""
        return self._deadline


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


class Grants:
    """The holder's record of the read leases it handed out, one per copy.

    `offer` records the lease's end *before* the message goes out: whether it
    arrives or not, no copy can hold a lease past `expiry[copy]`. A copy that
    missed an update is `behind`: it gets no new lease until it has caught up,
    and writes wait until its old lease has run out.
    """

    def __init__(self, clock: Clock, duration: float, max_drift: float = 0.01):
        self.clock = clock
        self.duration = duration
        self.max_drift = max_drift
        self.expiry: dict[str, float] = {}  # monotonic, this node's clock
        self.stamps: dict[str, dict] = {}  # each copy's newest stamp
        self.behind: set[str] = set()
        self.closed = False  # a holder stepping down grants nothing more (`close`)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Grant nothing from now on (until we gain a lease again): once this returns, no
        offer of ours is being recorded, so none can come after a release that follows."""
        with self._lock:
            self.closed = True

    def heard(self, copy: str, stamp) -> None:
        """A copy answered with `stamp`: the next grant may count from it."""
        if not isinstance(stamp, dict):
            return
        if isinstance(stamp.get("run"), str) and _number(stamp.get("at")):
            with self._lock:
                self.stamps[copy] = {"run": stamp["run"], "at": stamp["at"]}

    def offer(self, copy: str, holds_until: float) -> dict | None:
        """A lease for `copy` to send now, recorded first; None if none may be given.

        Only while our own write lease holds (`holds_until`, monotonic), checked
        on the same reading of the clock as the record: a holder frozen between
        deciding and recording grants nothing when it wakes.
        """
        with self._lock:
            now = self.clock.mono()
            stamp = self.stamps.get(copy)
            if self.closed or copy in self.behind or stamp is None or now >= holds_until:
                return None
            self.expiry[copy] = max(self.expiry.get(copy, 0.0), now + self.duration)
            return {**stamp, "length": self.duration}

    def gained(self, copies: list[str]) -> None:
        """We just took the lease: an older holder's grants may run this long yet."""
        with self._lock:
            until = self.clock.mono() + self.duration * (1 + self.max_drift)
            for copy in copies:
                self.expiry[copy] = max(self.expiry.get(copy, 0.0), until)
            self.behind.clear()
            self.closed = False

    @property
    def longest(self) -> float:
        """The longest any copy's lease can still run after a record: what writes may wait."""
        return self.duration * (1 + self.max_drift)

    def miss(self, copy: str) -> None:
        with self._lock:
            self.behind.add(copy)

    def caught_up(self, copy: str) -> None:
        with self._lock:
            self.behind.discard(copy)

    def lapsed(self, copy: str) -> bool:
        return self.clock.mono() >= self.expiry.get(copy, 0.0)

    def behind_lapsed(self) -> bool:
        """Whether every copy that missed an update has seen its read lease run out."""
        with self._lock:
            end = max((self.expiry.get(c, 0.0) for c in self.behind), default=0.0)
        return self.clock.mono() >= end

    def wait_for_behind(self, sleep, limit: float) -> float:
        """Until every behind copy's lease has run out (at most `limit` s); seconds waited."""
        with self._lock:
            end = max((self.expiry.get(c, 0.0) for c in self.behind), default=0.0)
        pause = min(max(0.0, end - self.clock.mono()), limit)
        if pause:
            sleep(pause)
        return pause
