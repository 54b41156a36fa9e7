"""The primary's lease as a deterministic state machine, replicated by Raft.

Every replica applies the same commands in the same order, so every replica
agrees on the holder and the epoch. No command carries a time, and applying
one never reads a clock: whether a lease has run out is for each voter to
tell on its own monotonic clock (`common.lease.keeper`), never by comparing
two nodes' wall clocks (design §7 rule 8).

Every change bumps `seq`. A candidate that saw a lease go quiet proposes
"acquire, if the lease is still (epoch, seq) as I saw it": if the holder
renewed meanwhile, the command finds a newer seq and changes nothing. Each
change of holder raises the epoch: the fencing token of design §7 rule 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """The lease as one replica's log has it."""

    holder: str | None
    epoch: int
    seq: int = 0  # bumped by every acquire, renewal and release


class LeaseTable:
    def __init__(self) -> None:
        self.grant = Grant(None, 0, 0)

    def acquire(self, candidate: str, epoch: int, seq: int) -> Grant:
        """Take the lease if it is still as the candidate saw it; a new epoch each time."""
        if (self.grant.epoch, self.grant.seq) == (epoch, seq):
            self.grant = Grant(candidate, epoch + 1, seq + 1)
        return self.grant

    def renew(self, holder: str, epoch: int) -> Grant:
        """Extend the holder's lease; refused (unchanged) unless `holder` still holds `epoch`.

        A lease that ran out but that nobody took since is still the holder's:
        the epoch did not change, so nobody else can have written.
        """
        if (self.grant.holder, self.grant.epoch) == (holder, epoch):
            self.grant = Grant(holder, epoch, self.grant.seq + 1)
        return self.grant

    def release(self, holder: str, epoch: int) -> Grant:
        """A holder that stops gracefully frees the lease at once (faster hand-off)."""
        if (self.grant.holder, self.grant.epoch) == (holder, epoch):
            self.grant = Grant(None, epoch, self.grant.seq + 1)
        return self.grant
