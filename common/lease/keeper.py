"""A catalog's side of the lease: acquire when free, renew while held, know when to stop.

All of it on this node's monotonic clock (design §7 rule 8):

- The holder counts its lease from the moment it *proposed* a grant or
  renewal, and stops `margin` seconds before the end.
- Every other catalog counts from the moment its own Raft log *applied* the
  last change to the lease (a restarted voter: from replaying it). Only once
  a whole lease plus a drift allowance has passed that way with no renewal
  applied may it try to acquire, naming the (epoch, seq) it saw; Raft refuses
  the command if a renewal got in first.

Why that gives one writer: the holder proposed renewal n before any voter
applied it, so a candidate's wait, `duration x (1 + max_drift)` on its own
clock from applying n, ends after the holder's lease from n ended on the
holder's clock, as long as the two clocks' rates differ by less than
`max_drift`. Wall clocks may say anything.

Config order only says who tries first at a cold start: the n-th catalog
waits n x `lease_duration` after it sees the lease free; once a holder has
gone, any catalog may try. A returning catalog never takes a lease that is
still being renewed. `tick()` does one step and is driven by a thread in
production and by hand, with a fake clock, in tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from common.lease.clock import Clock
from common.lease.table import Grant

log = logging.getLogger(__name__)


class LeaseGroup(Protocol):
    """What the keeper needs of the replicated table (Raft, or a fake in tests)."""

    def view(self) -> Grant: ...
    def quiet_for(self) -> float: ...  # seconds (local monotonic) since a change was applied
    def ready(self) -> bool: ...  # the group can decide now (a Raft leader is known)
    def acquire(self, candidate: str, epoch: int, seq: int) -> Grant | None: ...
    def renew(self, holder: str, epoch: int) -> Grant | None: ...
    def release(self, holder: str, epoch: int) -> Grant | None: ...


class LeaseKeeper:
    def __init__(
        self,
        me: str,
        rank: int,
        group: LeaseGroup,
        clock: Clock,
        duration: float,
        renew_every: float,
        margin: float,
        on_gained: Callable[[int], None] = lambda epoch: None,
        max_drift: float = 0.01,
        unfit: Callable[[], str | None] = lambda: None,
        before_release: Callable[[], None] = lambda: None,
    ):
        self.me = me
        self.rank = rank  # place in config order: who tries first
        self.group = group
        self.clock = clock
        self.duration = duration
        self.renew_every = renew_every
        self.margin = margin
        self.on_gained = on_gained
        # Why this node cannot do a writer's work now (its wall clock too far from its
        # peers' for signed calls; for a catalog, also data not whole or a takeover that
        # kept failing), or None: while it says why, it neither takes the lease nor keeps it.
        self.unfit = unfit
        # Run after this node stopped holding and before its release is proposed: the
        # catalog closes its read-lease grants here, so none it records can come after
        # the release that lets the next holder in (and count from before that one).
        self.before_release = before_release
        # How long a lease must look quiet here before it is surely over at its holder.
        self.patience = duration * (1 + max_drift)
        self.epoch = 0  # the epoch we hold, or 0
        self.taken_from: str | None = None
        # The holder that freed the lease we took (None: it went quiet, or none was seen).
        self.released_by: str | None = None
        self._last_holder: tuple[str, int] | None = None  # (holder, epoch) last seen held
        self._valid_until = 0.0  # monotonic
        self._free_since: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by `poke` and `stop`

    # -- view ---------------------------------------------------------------
    def holds(self) -> bool:
        """True while this node may act as the holder of `self.epoch`."""
        return self.epoch > 0 and self.clock.mono() < self._valid_until

    def holds_until(self) -> float:
        """The monotonic moment our lease ends (0 if none): nothing is granted past it."""
        return self._valid_until if self.epoch else 0.0

    def remaining(self) -> float:
        return max(0.0, self._valid_until - self.clock.mono()) if self.epoch else 0.0

    # -- one step -------------------------------------------------------------
    def tick(self) -> None:
        seen = self.group.view()
        if seen.holder is not None:
            self._last_holder = (seen.holder, seen.epoch)
        if self.epoch and seen.epoch > self.epoch:
            self._lose(f"epoch {seen.epoch} taken by {seen.holder}")
        why_not = self.unfit()
        if self.epoch and why_not:
            self._step_down(f"unfit to write ({why_not})")
        elif self.epoch:
            self._renew()
        elif not why_not and self._may_try(seen):
            self._acquire(seen)

    def _may_try(self, seen: Grant) -> bool:
        if not self.group.ready():
            self._free_since = None
            return False
        if seen.holder is not None:  # held: only once it has gone quiet here for long enough
            self._free_since = None
            return self.group.quiet_for() >= self.patience
        if seen.epoch:  # released by a holder that stopped: whoever sees it first takes over
            return True
        # A cold start: the rank delay counts from when the group can decide, and is a
        # whole lease per rank, so a first in config order that boots a little later
        # still gets the first real chance.
        if self._free_since is None:
            self._free_since = self.clock.mono()
        return self.clock.mono() - self._free_since >= self.rank * self.duration

    def _acquire(self, seen: Grant) -> None:
        proposed = self.clock.mono()
        grant = self.group.acquire(self.me, seen.epoch, seen.seq)
        if grant is None or grant.holder != self.me or grant.epoch != seen.epoch + 1:
            return
        self.epoch = grant.epoch
        self._valid_until = proposed + self.duration - self.margin
        self._free_since = None
        self.taken_from = seen.holder  # the holder whose lease went quiet (None: released)
        last = self._last_holder
        released = seen.holder is None and last is not None and last[1] == seen.epoch
        self.released_by = last[0] if released else None
        log.info("%s holds the lease, epoch %d", self.me, self.epoch)
        self.on_gained(self.epoch)

    def _renew(self) -> None:
        proposed = self.clock.mono()
        grant = self.group.renew(self.me, self.epoch)
        if grant is None:  # no answer in time: the lease simply runs out if this goes on
            return
        if (grant.holder, grant.epoch) != (self.me, self.epoch):
            self._lose(f"renewal refused; epoch {grant.epoch} held by {grant.holder}")
            return
        self._valid_until = max(self._valid_until, proposed + self.duration - self.margin)

    def _step_down(self, why: str) -> None:
        """Stop writing now and free the lease, so another catalog takes over at once."""
        epoch = self.epoch
        self._lose(why)
        self.before_release()
        self.group.release(self.me, epoch)

    def _lose(self, why: str) -> None:
        log.warning("%s lost the lease of epoch %d: %s", self.me, self.epoch, why)
        self.epoch = 0
        self._valid_until = 0.0

    def pause(self) -> float:
        """Seconds until the next step. A holder renews every `renew_every`. Another
        catalog, while someone holds the lease, looks again when it could first have
        gone quiet here (a renewal meanwhile only pushes that later), and at once when
        the holder changes (`poke`: a release). Otherwise, four times a renewal."""
        if self.epoch:
            return self.renew_every
        often = self.renew_every / 4
        if self.group.view().holder is None or not self.group.ready():
            return often
        return max(often, self.patience - self.group.quiet_for())

    def poke(self) -> None:
        """The lease changed hands (from the group's applier): step now, not at `pause`."""
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self._loop, name="lease-keeper", daemon=True).start()

    def _loop(self) -> None:
        # Each wake-up of an idle process costs about as much CPU as a request (see
        # docs/performance.md): a backup that looked every 0.1 s paid 10 a second.
        while not self._stop.is_set():
            try:
                pause = self.pause()
            except Exception:  # a view the group could not give: look again soon
                log.exception("lease view failed")
                pause = self.renew_every / 4
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # the keeper must outlive any one failed step
                log.exception("lease step failed")

    def stop(self) -> None:
        """Stop renewing and trying; free a lease we hold so another catalog takes over
        without waiting out a quiet lease (a graceful stop, `bazar rolling-restart`).

        Safe because this node stops acting as the holder (`holds()` is False from the
        next line on) and closes its grants before the release is even proposed: the
        next holder's acquire comes after the release in the log, so after every write
        and grant of ours, and it waits out the read leases we gave as after any change.
        """
        self._stop.set()
        self._wake.set()
        if self.epoch:
            epoch, self.epoch, self._valid_until = self.epoch, 0, 0.0
            log.info("%s steps down: releasing the lease of epoch %d", self.me, epoch)
            self.before_release()
            self.group.release(self.me, epoch)
