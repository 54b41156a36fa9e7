"""The lease table and keeper, driven by a fake clock (no threads, no sleeps)."""

from __future__ import annotations

import pytest

from common.lease.clock import FakeClock
from common.lease.keeper import LeaseKeeper
from common.lease.table import LeaseTable

DURATION, RENEW, MARGIN = 2.5, 0.4, 0.5


class FakeGroup:
    """A LeaseTable shared by keepers, with a switch that cuts a node off (no quorum)."""

    def __init__(self):
        self.table = LeaseTable()
        self.cut: set[str] = set()

        self.leader = True

    def view(self):
        return self.table.grant

    def ready(self):
        return self.leader

    def acquire(self, candidate, now, duration):
        return None if candidate in self.cut else self.table.acquire(candidate, now, duration)

    def renew(self, holder, epoch, now, duration):
        return None if holder in self.cut else self.table.renew(holder, epoch, now, duration)

    def release(self, holder, epoch):
        return None if holder in self.cut else self.table.release(holder, epoch)


def keeper(name, rank, group, clock, gained=None):
    return LeaseKeeper(
        name, rank, group, clock, DURATION, RENEW, MARGIN, on_gained=gained or (lambda e: None)
    )


def run(clock, keepers, seconds, step=RENEW):
    for _ in range(round(seconds / step)):
        clock.advance(step)
        for k in keepers:
            k.tick()


def test_table_gives_a_new_epoch_to_each_new_holder_only_when_free():
    table = LeaseTable()
    assert table.acquire("a", 100.0, 2.5).holder == "a"
    assert table.acquire("b", 101.0, 2.5).holder == "a"  # still held
    assert table.renew("a", 1, 102.0, 2.5).expires_at == 104.5
    taken = table.acquire("b", 104.5, 2.5)
    assert (taken.holder, taken.epoch) == ("b", 2)
    assert table.renew("a", 1, 105.0, 2.5).holder == "b"  # a stale renewal changes nothing


def test_table_renewal_after_expiry_keeps_the_epoch_when_nobody_took_it():
    table = LeaseTable()
    table.acquire("a", 100.0, 2.5)
    assert table.renew("a", 1, 110.0, 2.5) == table.grant
    assert (table.grant.epoch, table.grant.expires_at) == (1, 112.5)


def test_table_release_frees_at_once_but_keeps_the_epoch_counting():
    table = LeaseTable()
    table.acquire("a", 100.0, 2.5)
    table.release("a", 1)
    assert table.acquire("b", 100.1, 2.5).epoch == 2


def test_first_in_config_order_takes_the_lease_and_keeps_it():
    clock, group = FakeClock(), FakeGroup()
    gained = []
    a = keeper("a", 0, group, clock, gained.append)
    b = keeper("b", 1, group, clock)
    run(clock, [b, a], 10)
    assert a.holds() and not b.holds()
    assert gained == [1]
    assert group.table.grant.epoch == 1


def test_isolated_holder_stops_before_anyone_else_can_acquire():
    clock, group = FakeClock(), FakeGroup()
    a, b = keeper("a", 0, group, clock), keeper("b", 1, group, clock)
    run(clock, [a, b], 2)
    group.cut.add("a")
    overlap = 0
    for _ in range(100):
        clock.advance(0.05)
        a.tick()
        b.tick()
        overlap += a.holds() and b.holds()
        if b.holds():
            # the margin: a stopped at least clock_margin before b could start
            assert not a.holds()
    assert overlap == 0
    assert b.holds() and group.table.grant.epoch == 2


def test_holder_stops_within_duration_minus_margin_of_its_last_successful_renewal():
    clock, group = FakeClock(), FakeGroup()
    a = keeper("a", 0, group, clock)
    run(clock, [a], 1)
    group.cut.add("a")
    cut_at = clock.mono()
    while a.holds():
        clock.advance(0.01)
        a.tick()
    assert clock.mono() - cut_at <= DURATION - MARGIN + 0.011  # one step of 0.01


def test_returning_node_does_not_take_a_held_lease():
    clock, group = FakeClock(), FakeGroup()
    b = keeper("b", 1, group, clock)
    run(clock, [b], 3)  # a is away: b takes it once its cold-start turn comes
    a = keeper("a", 0, group, clock)  # a returns, earlier in config order
    run(clock, [a, b], 10)
    assert b.holds() and not a.holds()


def test_deposed_holder_notices_a_newer_epoch_in_the_log():
    clock, group = FakeClock(), FakeGroup()
    a = keeper("a", 0, group, clock)
    run(clock, [a], 1)
    group.table.release("a", a.epoch)  # as if the lease moved on without a
    group.table.acquire("c", clock.wall(), DURATION)
    a.tick()
    assert not a.holds() and a.epoch == 0


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_rank_delays_the_first_try_at_a_cold_start(rank):
    clock, group = FakeClock(), FakeGroup()
    k = keeper("k", rank, group, clock)
    k.tick()
    for _ in range(rank):
        assert not k.holds()
        clock.advance(DURATION)
        k.tick()
    assert k.holds()


def test_first_in_config_order_wins_even_when_it_boots_a_second_later():
    clock, group = FakeClock(), FakeGroup()
    b = keeper("b", 1, group, clock)
    run(clock, [b], 1.2)
    a = keeper("a", 0, group, clock)
    run(clock, [a, b], 5)
    assert a.holds() and not b.holds()


def test_rank_delay_starts_only_once_the_group_can_decide():
    clock, group = FakeClock(), FakeGroup()
    group.leader = False
    a, b = keeper("a", 0, group, clock), keeper("b", 1, group, clock)
    run(clock, [b, a], 3)  # no Raft leader yet: nobody tries, the delay does not run
    assert not a.holds() and not b.holds()
    group.leader = True
    run(clock, [b, a], 2)
    assert a.holds() and not b.holds()


def test_after_a_holder_is_gone_any_catalog_tries_at_once():
    clock, group = FakeClock(), FakeGroup()
    a, b = keeper("a", 0, group, clock), keeper("c", 2, group, clock)
    run(clock, [a, b], 1)
    group.cut.add("a")
    while a.holds():
        clock.advance(0.05)
        a.tick()
    clock.advance(MARGIN)  # the lease itself ends
    b.tick()
    assert b.holds()  # no rank delay: the holder went away


def test_graceful_stop_releases_the_lease():
    clock, group = FakeClock(), FakeGroup()
    a, b = keeper("a", 0, group, clock), keeper("b", 1, group, clock)
    run(clock, [a, b], 2)
    a.stop()
    run(clock, [b], 1)
    assert b.holds()


def test_fence_refuses_older_epochs_with_409_and_counts_them():
    from common.lease.fence import EpochFence
    from common.web import ApiError

    fence = EpochFence()
    fence.admit(3, "push")
    with pytest.raises(ApiError) as refused:
        fence.admit(2, "push")
    assert refused.value.status == 409 and refused.value.extra["epoch"] == 3
    assert fence.refused == 1 and fence.newest == 3


def test_voter_fence_trusts_only_its_raft_log():
    from common.lease.fence import VoterFence
    from common.web import ApiError

    log_epoch = [2]
    fence = VoterFence(known=lambda: log_epoch[0], patience=0.05, sleep=lambda s: None)
    fence.admit(2, "push")
    with pytest.raises(ApiError) as unknown:
        fence.admit(10**9, "push")  # an epoch Raft never decided: refused, not believed
    assert unknown.value.status == 409 and fence.newest == 2
    log_epoch[0] = 3
    with pytest.raises(ApiError) as old:
        fence.admit(2, "push")
    assert old.value.status == 409
