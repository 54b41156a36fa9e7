"""Clock and pause faults on real clusters (tests/support/timefaults.py), each used once.

Every kind of node starts on a wall clock of its own; the Date header of its
answers (gunicorn sets it from the node's wall clock) shows the offset is real. A
node's clock jumps by minutes while it runs; a restart puts a node on a clock,
the shim's or libfaketime's (as the issue's reproduction used it). A
paused node stops answering and answers again once continued, also when the test
body fails, and stops at once if the cluster is taken down meanwhile (--netns only). The same on
a `--netns` cluster (skipped without root, ip and nft).

Offsets at the start stay within 30 s of each other: signed calls between nodes
further apart are refused (`auth.MAX_SKEW`), and the cluster must come up.
"""

from __future__ import annotations

import email.utils
import os
import signal
import threading
import time

import pytest
import requests

from common.ops import hostnet, procs
from tests.partitions import leftovers
from tests.support import hostlock, timefaults
from tests.support.cluster import LocalCluster, wait_until

WHY_NOT = timefaults.shim_missing()
if WHY_NOT:
    pytest.skip(f"no clock faults: {WHY_NOT}", allow_module_level=True)

START_CLOCKS = {"catalog-2": -12.0, "recovery-1": -8.0, "order-1": 10.0, "frontend-1": 14.0}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("clocks"), clocks=START_CLOCKS).up()
    yield cluster
    cluster.discard()


def assert_wall_offset(cluster: LocalCluster, name: str, offset: float) -> None:
    """The node's Date header says its wall clock is `offset` s off ours (to the second)."""
    before = time.time()
    response = requests.get(f"{cluster.url_of(name)}/health", timeout=5)
    after = time.time()
    date = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert int(before + offset) - 1 <= date <= after + offset, (name, offset, date - before)


def answers(cluster: LocalCluster, name: str) -> bool:
    try:
        return requests.get(f"{cluster.url_of(name)}/health", timeout=0.5).ok
    except requests.RequestException:
        return False


def test_every_kind_of_node_starts_on_its_own_wall_clock(cluster):
    for name, offset in START_CLOCKS.items():
        assert_wall_offset(cluster, name, offset)
    assert_wall_offset(cluster, "catalog-1", 0.0)  # the others keep the host's
    assert cluster.api.buy(1).status_code == 201  # and the cluster works


def test_a_wall_clock_jumps_by_minutes_while_the_node_runs(cluster):
    clock = cluster.clocks["order-1"]
    try:
        for offset in (300.0, -300.0):
            clock.set(offset)
            assert_wall_offset(cluster, "order-1", offset)
            assert answers(cluster, "order-1")  # its monotonic clock went on: it still works
    finally:
        clock.set(START_CLOCKS["order-1"])
    assert_wall_offset(cluster, "order-1", START_CLOCKS["order-1"])


def test_a_restart_puts_a_node_on_a_clock(cluster):
    timefaults.restart_on_clock(cluster, "order-2", -5.0)
    assert_wall_offset(cluster, "order-2", -5.0)
    cluster.clocks["order-2"].set(6.0)
    assert_wall_offset(cluster, "order-2", 6.0)


@pytest.mark.skipif(bool(timefaults.faketime_missing()), reason=f"{timefaults.faketime_missing()}")
def test_libfaketime_gives_a_node_a_fixed_offset(cluster):
    timefaults.give_faketime(cluster, "order-2", "-7s")
    cluster.kill("order-2")
    cluster.start("order-2")
    assert_wall_offset(cluster, "order-2", -7.0)
    assert "order-2" not in cluster.clocks  # no jumps under it


def test_a_paused_node_stops_answering_and_answers_once_continued(cluster):
    with timefaults.paused(cluster, "catalog-2") as group:
        states = timefaults.group_states(group)
        assert len(states) >= 2 and set(states.values()) == {"T"}, states  # master and worker
        assert not answers(cluster, "catalog-2")
    wait_until(lambda: answers(cluster, "catalog-2"), 10, "catalog-2 to answer again")

    with pytest.raises(RuntimeError), timefaults.paused(cluster, "catalog-2") as group:
        raise RuntimeError("a test failing while a node is paused")
    assert "T" not in timefaults.group_states(group).values()

    stop = threading.Event()
    pause = threading.Thread(target=timefaults.pause_for, args=(cluster, "order-2", 60, stop))
    pause.start()
    wait_until(lambda: not answers(cluster, "order-2"), 10, "order-2 to freeze")
    stop.set()  # a nemesis ending: the pause ends early, the node runs on
    pause.join(5)
    assert not pause.is_alive()
    wait_until(lambda: answers(cluster, "order-2"), 10, "order-2 to answer again")


@pytest.mark.skipif(
    bool(hostnet.missing_requirement()),
    reason=f"needs `bazar up --netns`: {hostnet.missing_requirement()}",
)
def test_clocks_and_pauses_on_a_netns_cluster(tmp_path):
    with hostlock.netns_tests():
        clocks_and_pauses_on_a_netns_cluster(tmp_path)


def clocks_and_pauses_on_a_netns_cluster(tmp_path):
    leftovers.clear()  # what an earlier crashed run left behind, not another run's cluster
    cluster = LocalCluster(tmp_path / "c", netns=True, clocks={"frontend-1": 14.0})
    cluster.up()
    try:
        assert_wall_offset(cluster, "frontend-1", 14.0)  # the env went through `ip netns exec`
        cluster.clocks["frontend-1"].set(-90.0)
        assert_wall_offset(cluster, "frontend-1", -90.0)
        with timefaults.paused(cluster, "order-1"):
            assert not answers(cluster, "order-1")
        wait_until(lambda: answers(cluster, "order-1"), 10, "order-1 to answer again")

        # `bazar stop` continues a node it stops: no wait for the SIGKILL fallback (10 s)
        pid = procs.running_pid(cluster.cluster, cluster.node("order-2"))
        os.killpg(pid, signal.SIGSTOP)
        started = time.monotonic()
        cluster.stop("order-2")  # as a teardown after a test that left a node paused
        assert time.monotonic() - started < 6.0
    finally:
        cluster.discard()
