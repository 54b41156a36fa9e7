"""common/replication/group_call.py: callers that arrive together share one send."""

from __future__ import annotations

import threading
import time

import pytest

from common.replication.group_call import GroupCall


def run_all(target, count: int) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_every_caller_gets_its_own_answer_and_waiting_callers_share_a_batch():
    sizes = []

    def send(items):
        sizes.append(len(items))
        time.sleep(0.02)  # a batch in flight: others queue up behind it
        return [item * 10 for item in items]

    group, answers = GroupCall(send, limit=8), {}
    run_all(lambda n: answers.__setitem__(n, group.call(n)), 40)
    assert answers == {n: n * 10 for n in range(40)}
    assert sum(sizes) == 40 and max(sizes) > 1 and max(sizes) <= 8
    assert (group.batches, group.items) == (len(sizes), 40)


def test_a_failed_send_fails_every_caller_of_that_batch_and_not_the_next():
    calls = []

    def send(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise ConnectionError("catalog gone")
        return items

    group = GroupCall(send)
    with pytest.raises(ConnectionError):
        group.call("first")
    assert group.call("second") == "second"


def test_a_send_that_answers_the_wrong_number_of_items_is_an_error():
    group = GroupCall(lambda items: [])
    with pytest.raises(RuntimeError, match="0 answers for 1 items"):
        group.call("x")


def test_lanes_let_that_many_batches_travel_at_once_and_no_more():
    in_flight, most, lock = [0], [0], threading.Lock()

    def send(items):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.03)
        with lock:
            in_flight[0] -= 1
        return items

    group, answers = GroupCall(send, limit=4, lanes=2), {}
    run_all(lambda n: answers.__setitem__(n, group.call(n)), 30)
    assert answers == {n: n for n in range(30)}
    assert most[0] == 2


def test_call_many_answers_each_item_in_order_even_split_over_batches():
    sizes = []

    def send(items):
        sizes.append(len(items))
        time.sleep(0.01)
        return [item.upper() for item in items]

    group = GroupCall(send, limit=3)
    answers = {}
    run_all(lambda n: answers.__setitem__(n, group.call_many([f"{n}a", f"{n}b"])), 6)
    assert answers == {n: [f"{n}A", f"{n}B"] for n in range(6)}
    assert sum(sizes) == 12 and max(sizes) == 3  # one caller's items may ride two batches


def test_call_many_raises_when_a_batch_carrying_its_items_failed():
    group = GroupCall(lambda items: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(ConnectionError):
        group.call_many(["a", "b"])
    assert group.call_many([]) == []


def test_a_lone_caller_never_lingers():
    group = GroupCall(lambda items: items, linger=5.0)
    started = time.monotonic()
    assert group.call("alone") == "alone"
    assert time.monotonic() - started < 1.0


def test_a_leader_behind_a_batch_in_flight_lingers_for_riders():
    """Callers arriving a few ms apart behind a busy lane share one batch with linger,
    and scatter over several without it."""

    def batch_sizes(linger: float) -> list[int]:
        sizes, release = [], threading.Event()

        def send(items):
            sizes.append(len(items))
            if items == ["blocker"]:
                release.wait(5)  # keeps one lane busy: the others arrive under load
            return items

        group = GroupCall(send, limit=32, lanes=2, linger=linger)
        blocker = threading.Thread(target=group.call, args=("blocker",))
        blocker.start()
        while not sizes:
            time.sleep(0.001)
        callers = []
        for n in range(6):
            callers.append(threading.Thread(target=group.call, args=(n,)))
            callers[-1].start()
            time.sleep(0.01)
        release.set()
        for thread in [blocker, *callers]:
            thread.join(5)
        return sizes[1:]

    assert batch_sizes(linger=0.5) == [6]
    assert len(batch_sizes(linger=0.0)) > 1


def test_a_lingering_leader_sends_once_as_many_wait_as_the_last_batch_carried():
    """A closed loop: the callers of the batch that came back are the ones to wait for;
    once they are all there, the rest of the linger would only delay them."""
    sizes, release = [], threading.Event()

    def send(items):
        sizes.append(len(items))
        if items == ["blocker"]:
            release.wait(5)
        return items

    group = GroupCall(send, limit=32, lanes=2, linger=2.0)
    assert group.call_many(["a", "b", "c"]) == ["a", "b", "c"]  # nothing in flight: at once
    blocker = threading.Thread(target=group.call, args=("blocker",))
    blocker.start()
    while len(sizes) < 2:
        time.sleep(0.001)
    began = time.monotonic()
    callers = [threading.Thread(target=group.call, args=(n,)) for n in range(3)]
    for thread in callers:
        thread.start()
        time.sleep(0.01)
    for thread in callers:
        thread.join(5)
    took = time.monotonic() - began
    release.set()
    blocker.join(5)
    assert sizes == [3, 1, 3], sizes
    assert took < 1.0, f"the leader waited out its linger: {took:.2f} s"
