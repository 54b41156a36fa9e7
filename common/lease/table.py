"""The primary's lease as a deterministic state machine, replicated by Raft.

Every replica applies the same commands in the same order, so every replica
agrees on the holder and the epoch. Time comes in with each command (the
proposer's wall clock), never from the machine applying it. Each change of
holder raises the epoch: the fencing token of design §7 rule 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """The lease as one replica's log has it."""

    holder: str | None
    epoch: int
    expires_at: float  # wall clock of the proposer of the last grant or renewal

    def free_at(self, now: float) -> bool:
        return self.holder is None or now >= self.expires_at


class LeaseTable:
    def __init__(self) -> None:
        self.grant = Grant(None, 0, 0.0)

    def acquire(self, candidate: str, now: float, duration: float) -> Grant:
        """Take the lease if it is free at `now`; a new holder always gets a new epoch."""
        if self.grant.free_at(now):
            self.grant = Grant(candidate, self.grant.epoch + 1, now + duration)
        return self.grant

    def renew(self, holder: str, epoch: int, now: float, duration: float) -> Grant:
        """Extend the holder's lease; refused (unchanged) unless `holder` still holds `epoch`.

        A lease that ran out but that nobody took since is still the holder's:
        the epoch did not change, so nobody else can have written.
        """
        if (self.grant.holder, self.grant.epoch) == (holder, epoch):
            self.grant = Grant(holder, epoch, max(self.grant.expires_at, now + duration))
        return self.grant

    def release(self, holder: str, epoch: int) -> Grant:
        """A holder that stops gracefully frees the lease at once (faster hand-off)."""
        if (self.grant.holder, self.grant.epoch) == (holder, epoch):
            self.grant = Grant(None, epoch, 0.0)
        return self.grant
