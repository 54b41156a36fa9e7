"""The lease table, keeper and read leases, each node on a clock of its own.

No threads, no sleeps: a `World` moves real time in steps, and every node's
FakeClock follows at its own rate (drift), from its own monotonic origin,
with its own wall clock (skews, and jumps during the run). The Raft log is
a table whose changes reach the nodes that are not cut off at once, and
the cut ones when they come back (as their Raft followers would catch up).
"""

from __future__ import annotations

import random

import pytest

from common.lease.clock import FakeClock
from common.lease.keeper import LeaseKeeper
from common.lease.reads import Grants, ReadLease
from common.lease.table import Grant, LeaseTable

DURATION, RENEW, MARGIN, DRIFT = 2.5, 0.4, 0.5, 0.01
STEP = 0.05


class World:
    """Real time, and every node's clock driven by it."""

    def __init__(self):
        self.t = 0.0
        self.clocks: list[FakeClock] = []

    def clock(self, rate=1.0, wall_offset=0.0) -> FakeClock:
        clock = FakeClock(start=random.uniform(1e3, 1e6), rate=rate, wall_offset=wall_offset)
        self.clocks.append(clock)
        return clock

    def advance(self, seconds: float) -> None:
        self.t += seconds
        for clock in self.clocks:
            clock.advance(seconds)


class RaftLog:
    """The replicated table, and what each voter has applied of it."""

    def __init__(self):
        self.table = LeaseTable()
        self.cut: set[str] = set()
        self.leader = True
        self.members: dict[str, Member] = {}

    def commit(self, proposer: str, change) -> Grant | None:
        if proposer in self.cut or not self.leader:
            return None
        change(self.table)
        for member in self.members.values():
            if member.name not in self.cut:
                member.apply(self.table.grant)
        return self.table.grant

    def heal(self, name: str) -> None:
        self.cut.discard(name)
        self.members[name].apply(self.table.grant)


class Member:
    """One voter's group: its applied view and when it applied a change, on its clock."""

    def __init__(self, log: RaftLog, name: str, clock: FakeClock):
        self.log, self.name, self.clock = log, name, clock
        self.grant = log.table.grant
        self.changed_at = clock.mono()  # a (re)started voter counts from its start
        log.members[name] = self

    def apply(self, grant: Grant) -> None:
        if grant != self.grant:
            self.grant, self.changed_at = grant, self.clock.mono()

    def view(self) -> Grant:
        return self.grant

    def quiet_for(self) -> float:
        return self.clock.mono() - self.changed_at

    def ready(self) -> bool:
        return self.log.leader and self.name not in self.log.cut

    def acquire(self, candidate, epoch, seq):
        return self.log.commit(self.name, lambda t: t.acquire(candidate, epoch, seq))

    def renew(self, holder, epoch):
        return self.log.commit(self.name, lambda t: t.renew(holder, epoch))

    def release(self, holder, epoch):
        return self.log.commit(self.name, lambda t: t.release(holder, epoch))


class Cluster:
    def __init__(self, specs: dict[str, dict] | None = None, names=("a", "b", "c")):
        self.world, self.log = World(), RaftLog()
        self.keepers: dict[str, LeaseKeeper] = {}
        self.gained: list[tuple[str, int]] = []
        self.paused: set[str] = set()
        for rank, name in enumerate(names):
            clock = self.world.clock(**(specs or {}).get(name, {}))
            self.keepers[name] = self._keeper(name, rank, clock)

    def _keeper(self, name, rank, clock) -> LeaseKeeper:
        return LeaseKeeper(
            name,
            rank,
            Member(self.log, name, clock),
            clock,
            DURATION,
            RENEW,
            MARGIN,
            on_gained=lambda epoch: self.gained.append((name, epoch)),
            max_drift=DRIFT,
        )

    def restart(self, name: str) -> None:
        old = self.keepers[name]
        self.keepers[name] = self._keeper(name, old.rank, old.clock)
        self.log.members[name].apply(self.log.table.grant)  # the replay

    def holders(self) -> list[str]:
        return [n for n, k in self.keepers.items() if k.holds()]

    def run(self, seconds: float) -> int:
        """Tick every unpaused keeper each step; the most holders seen at one moment."""
        most = 0
        for _ in range(round(seconds / STEP)):
            self.world.advance(STEP)
            for name, k in self.keepers.items():
                if name not in self.paused:
                    k.tick()
            most = max(most, len(self.holders()))
        return most


# -- the table --------------------------------------------------------------------


def test_table_gives_a_new_epoch_only_to_a_candidate_that_saw_the_newest_change():
    table = LeaseTable()
    assert table.acquire("a", 0, 0) == Grant("a", 1, 1)
    assert table.renew("a", 1) == Grant("a", 1, 2)
    assert table.acquire("b", 1, 1).holder == "a"  # a renewed since b looked: refused
    assert table.acquire("b", 1, 2) == Grant("b", 2, 3)
    assert table.renew("a", 1).holder == "b"  # a stale renewal changes nothing


def test_table_release_frees_at_once_but_keeps_the_epoch_counting():
    table = LeaseTable()
    table.acquire("a", 0, 0)
    assert table.release("a", 1) == Grant(None, 1, 2)
    assert table.acquire("b", 1, 2).epoch == 2


# -- the keeper, one writer whatever the clocks say ------------------------------


def test_first_in_config_order_takes_the_lease_and_keeps_it():
    c = Cluster()
    assert c.run(15) == 1
    assert c.holders() == ["a"] and c.gained == [("a", 1)]


@pytest.mark.parametrize("offset", [4.0, -4.0, 90.0, -3600.0])
def test_a_wall_clock_far_off_never_takes_a_lease_that_is_being_renewed(offset):
    c = Cluster({"b": {"wall_offset": offset}, "c": {"wall_offset": -offset}})
    assert c.run(20) == 1
    assert c.holders() == ["a"] and c.gained == [("a", 1)]


@pytest.mark.parametrize("who", ["a", "b", "c"])
def test_wall_clocks_jumping_back_and_forth_change_nothing(who):
    c = Cluster()
    c.run(3)
    for jump in (30.0, -120.0, 5.0, -3.0, 3600.0):
        c.keepers[who].clock.jump_wall(jump)
        assert c.run(2) == 1
    assert c.holders() == ["a"] and len(c.gained) == 1


@pytest.mark.parametrize("rates", [(1.0, 1.0099), (1.0, 0.9901), (0.995, 1.0049)])
def test_a_cut_holder_stops_before_anyone_can_acquire_within_max_drift(rates):
    c = Cluster({"a": {"rate": rates[0]}, "b": {"rate": rates[1]}, "c": {"rate": rates[1]}})
    c.run(3)
    c.log.cut.add("a")
    assert c.run(10) == 1  # never two at one real moment
    assert c.holders() in (["b"], ["c"]) and c.log.table.grant.epoch == 2


def test_clocks_that_drift_apart_beyond_max_drift_can_break_it():
    """The assumption is real: a candidate whose clock runs 30% fast acquires too early."""
    c = Cluster({"b": {"rate": 1.3}, "c": {"rate": 1.3}})
    c.run(3)
    c.log.cut.add("a")
    assert c.run(10) == 2


def test_a_lagging_voter_counts_from_applying_and_its_stale_try_is_refused():
    c = Cluster()
    c.run(3)
    c.log.cut.add("b")  # b stops applying a's renewals (a lagging follower)
    c.run(5)
    assert c.keepers["b"].group.quiet_for() > DURATION * (1 + DRIFT)
    c.log.cut.discard("b")  # b can propose again, before it has applied what it missed
    c.keepers["b"].tick()  # it tries with the (epoch, seq) it saw 5 s ago: refused
    assert c.log.table.grant.holder == "a" and c.log.table.grant.epoch == 1
    c.log.heal("b")
    assert c.run(5) == 1 and c.holders() == ["a"]


def test_a_paused_holder_resumes_without_its_lease_and_a_new_holder_writes():
    c = Cluster()
    c.run(3)
    c.paused.add("a")  # SIGSTOP: its clock runs on, it does nothing
    assert c.run(DURATION * (1 + DRIFT) + 1.0) == 1
    (new,) = c.holders()
    assert new != "a"
    assert not c.keepers["a"].holds()  # checked on waking, before any step of its own
    c.paused.clear()
    assert c.run(3) == 1 and c.holders() == [new]


def test_a_pause_just_over_the_lease_is_as_safe():
    c = Cluster()
    c.run(3)
    c.paused.add("a")
    c.world.advance(DURATION - MARGIN + 0.01)  # nobody ticks: a's lease ran out meanwhile
    assert not c.keepers["a"].holds()


def test_a_restarted_voter_counts_from_replaying_the_last_grant():
    c = Cluster({"b": {"wall_offset": 600.0}})
    c.run(3)
    c.restart("b")
    c.log.cut.add("a")  # a's renewals stop right after b's replay
    c.run(DURATION * (1 + DRIFT) - 0.2)
    assert c.log.table.grant.holder == "a"  # not yet: b counts from the replay
    c.run(1.5)
    assert c.log.table.grant.epoch == 2


def test_a_restarted_holder_does_not_take_its_old_epoch_back():
    c = Cluster()
    c.run(3)
    c.restart("a")
    c.run(10)
    assert c.log.table.grant.epoch == 2 and len(c.holders()) == 1


def test_returning_node_does_not_take_a_held_lease():
    c = Cluster()
    c.log.cut.add("a")
    c.run(6)  # a is away: b takes it at its cold-start turn
    assert c.holders() == ["b"]
    c.log.heal("a")
    assert c.run(10) == 1 and c.holders() == ["b"]


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_rank_delays_the_first_try_at_a_cold_start(rank):
    world, log = World(), RaftLog()
    clock = world.clock()
    k = LeaseKeeper("k", rank, Member(log, "k", clock), clock, DURATION, RENEW, MARGIN)
    k.tick()
    for _ in range(rank):
        assert not k.holds()
        world.advance(DURATION)
        k.tick()
    assert k.holds()


def test_rank_delay_starts_only_once_the_group_can_decide():
    c = Cluster()
    c.log.leader = False
    c.run(3)
    assert c.holders() == []
    c.log.leader = True
    c.run(2)
    assert c.holders() == ["a"]


def test_graceful_stop_releases_the_lease_for_at_once():
    c = Cluster()
    c.run(2)
    c.keepers["a"].stop()
    c.paused.add("a")
    c.run(0.2)
    assert c.holders() in (["b"], ["c"])


def test_a_graceful_release_follows_the_closed_grants_and_names_the_releaser():
    """The holder closes its read-lease grants while the log still names it, then
    releases: the next holder knows who released (it held no copy's read lease) and
    does not count it among the copies whose grants it must wait out."""
    c = Cluster()
    c.run(2)
    a = c.keepers["a"]
    seen: list[str | None] = []
    a.before_release = lambda: seen.append(c.log.table.grant.holder)
    a.stop()
    c.paused.add("a")
    assert seen == ["a"] and not a.holds()
    c.run(0.2)
    (new,) = c.holders()
    assert c.keepers[new].released_by == "a" and c.keepers[new].taken_from is None


def test_a_lease_gone_quiet_is_not_taken_as_released():
    c = Cluster()
    c.run(2)
    c.paused.add("a")  # frozen: no release
    c.run(DURATION * 2)
    (new,) = c.holders()
    assert c.keepers[new].taken_from == "a" and c.keepers[new].released_by is None


def test_closed_grants_offer_nothing_until_the_next_lease_is_gained():
    clock = FakeClock()
    grants = Grants(clock, 2.0, DRIFT)
    grants.heard("copy", ReadLease(clock).stamp())
    grants.close()
    assert grants.offer("copy", holds_until=clock.mono() + 10) is None
    grants.gained(["copy"])
    assert grants.offer("copy", holds_until=clock.mono() + 10) is not None


def test_a_retired_read_lease_takes_no_grant_again():
    clock = FakeClock()
    lease = ReadLease(clock, DRIFT)
    lease.grant(1, {**lease.stamp(), "length": 2.0})
    lease.retire()
    assert not lease.valid()
    lease.grant(1, {**lease.stamp(), "length": 2.0})
    assert not lease.valid()


# -- read leases: each copy counts from its own stamp ---------------------------


class Wire:
    """Messages from the holder to a copy, each delivered after its own delay."""

    def __init__(self):
        self.flying: list[tuple[float, dict]] = []

    def send(self, at: float, grant: dict) -> None:
        self.flying.append((at, grant))

    def due(self, now: float) -> list[dict]:
        ready = [g for t, g in self.flying if t <= now]
        self.flying = [(t, g) for t, g in self.flying if t > now]
        return ready


@pytest.mark.parametrize("seed", range(6))
def test_a_copy_never_trusts_a_grant_past_the_holders_record(seed):
    rnd = random.Random(seed)
    world = World()
    holder_clock = world.clock(rate=rnd.uniform(0.995, 1.005), wall_offset=rnd.uniform(-60, 60))
    copy_clock = world.clock(rate=rnd.uniform(0.995, 1.005), wall_offset=rnd.uniform(-60, 60))
    grants, lease, wire = Grants(holder_clock, 2.0, DRIFT), ReadLease(copy_clock, DRIFT), Wire()
    replies: list[tuple[float, dict]] = []
    valid_ticks = 0
    for _ in range(2000):
        world.advance(STEP)
        if rnd.random() < 0.3:  # a push, maybe with a grant, arriving after 0-3 s
            offer = grants.offer("copy", holds_until=holder_clock.mono() + 10)
            wire.send(world.t + rnd.choice([0.001, 0.05, 0.5, 3.0]), offer)
        for grant in wire.due(world.t):
            if grant:
                lease.grant(1, grant)
            replies.append((world.t + rnd.choice([0.001, 0.3, 2.0]), lease.stamp()))
        for _t, stamp in [r for r in replies if r[0] <= world.t]:
            grants.heard("copy", stamp)
        replies = [r for r in replies if r[0] > world.t]
        if lease.valid():
            valid_ticks += 1
            assert not grants.lapsed("copy")  # the holder's record covers it
    assert valid_ticks > 100  # the lease did hold most of the time, the check bit


def test_a_grant_from_another_run_or_from_the_future_is_not_trusted():
    clock = FakeClock()
    lease = ReadLease(clock, DRIFT)
    other = ReadLease(FakeClock(), DRIFT)
    assert not lease.grant(1, {**other.stamp(), "length": 2.0}) and not lease.valid()
    future = {**lease.stamp(), "length": 2.0}
    future["at"] += 5
    lease.grant(1, future)
    assert not lease.valid()
    lease.grant(1, {**lease.stamp(), "length": 2.0})
    assert lease.valid()


def test_no_grant_once_the_holders_own_lease_has_ended():
    clock = FakeClock()
    grants = Grants(clock, 2.0, DRIFT)
    grants.heard("copy", ReadLease(clock).stamp())
    assert grants.offer("copy", holds_until=clock.mono() + 1) is not None
    clock.advance(1)  # a holder frozen after deciding to grant: the record refuses
    assert grants.offer("copy", holds_until=clock.mono()) is None


def test_a_new_holder_waits_out_what_the_old_one_granted():
    """Old holder a grants a copy until it is cut; b takes over and records every copy
    as possibly answering: b's record covers a's last grant at every moment."""
    c = Cluster(names=("a", "b"))
    a, b = c.keepers["a"], c.keepers["b"]
    copy = ReadLease(c.world.clock(rate=1.009, wall_offset=-30), DRIFT)
    old, new = Grants(a.clock, 2.0, DRIFT), Grants(b.clock, 2.0, DRIFT)
    b.on_gained = lambda epoch: new.gained(["copy"])
    c.run(3)
    c.log.cut.add("a")  # a still grants the copy while its own lease lasts
    checked = 0
    for _ in range(200):
        old.heard("copy", copy.stamp())
        offer = old.offer("copy", a.holds_until())
        if offer:
            copy.grant(1, offer)
        c.run(STEP)
        if b.holds() and copy.valid():
            assert not new.lapsed("copy")
            checked += 1
    assert b.holds() and checked > 0  # the old grant did overlap b's lease: the check bit


def test_a_holder_unfit_to_write_steps_down_and_an_unfit_catalog_never_takes_over():
    """A catalog whose wall clock is too far off for signed calls cannot replicate: it
    frees the lease at once for another, and does not take it back while unfit."""
    c = Cluster()
    c.run(3)
    unfit = {"a"}
    for name, k in c.keepers.items():
        k.unfit = lambda name=name: "its wall clock is too far" if name in unfit else None
    assert c.run(1) == 1
    (new,) = c.holders()
    assert new != "a" and c.log.table.grant.epoch == 2
    unfit.add(new)  # now the new holder's clock goes too: the third takes over, never a
    assert c.run(3) == 1
    (third,) = c.holders()
    assert third not in ("a", new)
    unfit.clear()
    assert c.run(10) == 1 and c.holders() == [third]  # fit again, nobody takes it back
