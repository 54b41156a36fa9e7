"""The lease table kept by a PySyncObj Raft group of the voters (design §7 rule 0).

Voters are every catalog node and the recovery node, each on its own Raft
address (`raft` in the config). The group's log is journaled under data_dir,
with the current term and vote (PySyncObj >= 0.3.17), so a restarted voter
never votes twice in one term. Raft traffic is encrypted and authenticated
with the cluster secret (PySyncObj's Fernet), also when [tls] is on: PySyncObj
speaks its own TCP protocol, which TLS cannot wrap without patching it, and its
Fernet tokens already give what TLS would (secrecy, integrity, replay protection per
connection). During a rotation every accepted secret decrypts, the current one
encrypts (`_Sync`), so the group never splits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import MultiFernet
from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, SyncObjException, replicated
from pysyncobj.encryptor import getEncryptor

from common.config import Cluster, Node
from common.lease.clock import Clock
from common.lease.table import Grant, LeaseTable

log = logging.getLogger(__name__)
LOG_FORMAT = "v2"  # monotonic leases: commands carry (epoch, seq), never a time


class LeaseState(SyncObjConsumer):
    """The replicated part: one LeaseTable, changed only through the Raft log.

    Beside it, a local note that is not replicated: when this voter last
    applied a change to the lease, on its own monotonic clock. Replaying the
    log after a restart applies the last grant again, so a restarted voter
    counts from the replay (from its start, if a dump restored the table).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.table = LeaseTable()
        self.clock = clock or Clock()
        self.changed_at = self.clock.mono()
        self.on_handover: Callable[[], None] = lambda: None  # the holder changed

    def _applied(self, before: Grant) -> Grant:
        after = self.table.grant
        if after != before:
            self.changed_at = self.clock.mono()
        if after.holder != before.holder:
            self.on_handover()
        return after

    @replicated
    def acquire(self, candidate: str, epoch: int, seq: int) -> Grant:
        before = self.table.grant
        self.table.acquire(candidate, epoch, seq)
        return self._applied(before)

    @replicated
    def renew(self, holder: str, epoch: int) -> Grant:
        before = self.table.grant
        self.table.renew(holder, epoch)
        return self._applied(before)

    @replicated
    def release(self, holder: str, epoch: int) -> Grant:
        before = self.table.grant
        self.table.release(holder, epoch)
        return self._applied(before)


class RaftLeaseGroup:
    """This voter's member of the group; blocking calls with a timeout, None on failure."""

    def __init__(self, cluster: Cluster, node: Node, timeout: float, clock: Clock | None = None):
        self.state = LeaseState(clock)
        self.timeout = timeout
        others = [n.raft for n in cluster.voters if n.name != node.name]
        self.sync = _Sync(
            cluster.cluster_secrets, node.raft, others, _conf(cluster, node), consumers=[self.state]
        )

    def on_handover(self, callback: Callable[[], None]) -> None:
        """Call `callback` (briefly, from the applier) when the lease changes hands."""
        self.state.on_handover = callback

    def view(self) -> Grant:
        """The lease as this voter's applied log has it (may lag the leader a little)."""
        return self.state.table.grant

    def quiet_for(self) -> float:
        """Seconds on this voter's monotonic clock since it applied a change to the lease."""
        return self.state.clock.mono() - self.state.changed_at

    def leads(self) -> bool:
        """This voter is the Raft leader as far as it knows (shown in /health)."""
        return self.sync._isLeader()

    def ready(self) -> bool:
        """A Raft leader is known: a command proposed now can be decided."""
        return self.sync._getLeader() is not None

    def acquire(self, candidate: str, epoch: int, seq: int) -> Grant | None:
        return self._call(self.state.acquire, candidate, epoch, seq)

    def renew(self, holder: str, epoch: int) -> Grant | None:
        return self._call(self.state.renew, holder, epoch)

    def release(self, holder: str, epoch: int) -> Grant | None:
        return self._call(self.state.release, holder, epoch)

    def _call(self, method, *args) -> Grant | None:
        try:
            return method(*args, sync=True, timeout=self.timeout)
        except SyncObjException as e:  # no leader, no quorum, or too slow: the caller retries
            log.debug("lease command failed: %s", e)
            return None

    def status(self) -> dict:
        raw = self.sync.getStatus()
        leader = raw.get("leader")
        return {
            "raft_leader": str(leader) if leader else None,
            "raft_term": raw.get("raft_term"),
            "has_quorum": raw.get("has_quorum"),
        }

    def lead_elsewhere(self, within: float) -> None:
        """Before this voter stops: while it leads the group, have the most caught-up
        follower stand for election now (Raft's TimeoutNow), so the holder's renewals and
        the next holder's acquire do not wait out an election (0.8-1.6 s timeout, 2.4 s
        seen). Kept up for `within` seconds, every 50 ms: PySyncObj refuses while no
        follower has the whole log (a renewal in flight), and a voter still draining its
        requests can win an election meanwhile."""
        deadline = time.monotonic() + within
        handed = False
        while time.monotonic() < deadline:
            if self.leads():
                if not handed:
                    log.info("stopping: hands the Raft lead on")
                handed = True
                self.sync.transferLeadership()
            time.sleep(0.05)
        if self.leads():
            log.warning("stopping: the Raft lead did not move within %.1f s", within)

    def stop(self) -> None:
        self.sync.destroy()


class _Sync(SyncObj):
    """A SyncObj whose traffic any of `secrets` decrypts and the first encrypts: a
    cluster-secret rotation rolls through the voters without splitting the group."""

    def __init__(self, secrets: tuple[str, ...], *args, **kwargs):
        self._keys = MultiFernet([getEncryptor(secret) for secret in secrets])
        super().__init__(*args, **kwargs)

    @property
    def encryptor(self):  # what PySyncObj's transport encrypts and decrypts with
        return self._keys


def _conf(cluster: Cluster, node: Node) -> SyncObjConf:
    folder = Path(cluster.data_dir) / "raft"
    folder.mkdir(parents=True, exist_ok=True)
    return SyncObjConf(
        password=cluster.cluster_secret,
        # The command format is part of the file name: a log written by an older
        # version (wall-clock leases, before v2) is not replayed into this one.
        journalFile=str(folder / f"{node.name}.{LOG_FORMAT}.journal"),
        fullDumpFile=str(folder / f"{node.name}.{LOG_FORMAT}.dump"),
        useFork=False,  # never fork inside a threaded gunicorn worker
        # Each wake-up of an idle voter costs about what a request does (docs/performance.md,
        # "What an idle cluster pays for"), so heartbeats and ticks (a poll of the sockets,
        # timers) come every 0.2 s, four heartbeats to the shortest election timeout; a dead
        # Raft leader is still replaced well inside the lease (`lease_duration`). A command
        # (a renewal, an acquire) wakes the poll and goes out at once, and so does the
        # commit that follows it (appendEntriesUseBatch off), not on the next tick or beat:
        # takeovers got faster (scripts/write_pause.py: worst 2.8 s, before 3.0-3.3 s). With
        # beats every 0.1 s the idle cluster took 25 ms CPU/s more (commands then batched).
        appendEntriesPeriod=0.2,
        autoTickPeriod=0.2,
        appendEntriesUseBatch=False,
        raftMinTimeout=0.8,
        raftMaxTimeout=1.6,
        connectionTimeout=1.6,  # PySyncObj wants it >= raftMaxTimeout
        connectionRetryTime=0.3,
        leaderFallbackTimeout=1.0,  # an isolated Raft leader steps down soon
        commandsWaitLeader=False,  # fail fast without a leader; the keeper retries
        # PySyncObj caches a peer's DNS answer for 600 s: a voter that comes back at a new
        # address (a rescheduled Kubernetes pod, a replaced host) would stay unheard.
        dnsCacheTime=2.0,
        dnsFailCacheTime=2.0,
    )
