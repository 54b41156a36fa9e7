"""A new holder's takeover, tried again and again (`CatalogRole._take_over`): one that
waits (returns False) is polled for as long as it takes; one that keeps raising is
spaced out and, after TAKEOVER_PATIENCE, frees the lease for another catalog."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from catalog import role
from catalog.role import TAKEOVER_PATIENCE, CatalogRole
from common.lease.clock import FakeClock

CLOCK = FakeClock()  # what the sleeps below advance


def holder(takeover, peers=("catalog-2",)):
    """The parts of a CatalogRole that `_take_over` reads."""
    me = SimpleNamespace(
        keeper=SimpleNamespace(epoch=7, pokes=0),
        takeover=takeover,
        clock=CLOCK,
        ctx=SimpleNamespace(peers=lambda: list(peers), clocks=SimpleNamespace(offset=lambda: 0)),
        whole=lambda: True,
        gathered=0,
        _aside_until=0.0,
    )
    me.keeper.poke = lambda: setattr(me.keeper, "pokes", me.keeper.pokes + 1)
    me._step_aside = lambda epoch: CatalogRole._step_aside(me, epoch)
    me._unfit = lambda: CatalogRole._unfit(me)
    return me


@pytest.fixture(autouse=True)
def fake_sleep(monkeypatch):
    """The test's own sleeps, recorded and skipped. `role.time` is the time module, so
    threads other tests left behind in this worker sleep through the patch too: they
    sleep for real and are not recorded (a 1 s sleep of one broke a CI run)."""
    sleeps, ours, real = [], threading.get_ident(), time.sleep

    def sleep(seconds):
        if threading.get_ident() != ours:
            return real(seconds)
        sleeps.append(seconds)
        CLOCK.advance(seconds)

    monkeypatch.setattr(role.time, "sleep", sleep)
    return sleeps


def test_a_takeover_that_keeps_raising_backs_off_then_steps_aside(fake_sleep):
    def behind(epoch):
        raise RuntimeError("the base of epoch 10 is a delta of base 8 (have 9)")

    me = holder(behind)
    began = me.clock.mono()
    CatalogRole._take_over(me, 7)
    assert fake_sleep[:6] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]  # spaced out, up to 2 s
    assert TAKEOVER_PATIENCE <= me.clock.mono() - began < TAKEOVER_PATIENCE + 2.0
    assert me.keeper.pokes == 1  # the keeper's next step frees the lease
    assert me.gathered == 0
    assert me._unfit() == "its takeover kept failing: another catalog may take over"
    me.clock.advance(TAKEOVER_PATIENCE)
    assert me._unfit() is None  # may stand for the lease again


def test_a_lone_catalog_never_steps_aside(fake_sleep):
    tries = []

    def behind(epoch):
        tries.append(epoch)
        if len(tries) == 40:  # 70 s of failing
            me.keeper.epoch = 0  # the lease went another way: the loop ends
        raise RuntimeError("behind")

    me = holder(behind, peers=())
    CatalogRole._take_over(me, 7)
    assert len(tries) == 40 and me.keeper.pokes == 0


def test_a_takeover_that_waits_is_polled_without_backing_off_or_stepping_aside(fake_sleep):
    answers = iter([False] * 100 + [True])

    def waits(epoch):
        me.clock.advance(1.0)  # with the pauses, 120 s of waiting for the recovery queue
        return next(answers)

    me = holder(waits)
    CatalogRole._take_over(me, 7)
    assert me.gathered == 7 and me.keeper.pokes == 0
    assert set(fake_sleep) == {0.2}
