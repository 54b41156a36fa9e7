"""catalog.doubt: what the writer committed and has not acknowledged is read by no one."""

from __future__ import annotations

import threading
import time

import pytest

from catalog.doubt import LISTING, Doubts, Write, keys_of
from common.web import ApiError


def reader(value: list):
    return lambda: value[0]


def at(position: int):
    return lambda: position


def test_keys_are_the_books_the_decisions_and_the_listing_a_write_changes():
    entries = [{"books": [{"id": 3}, {"id": 5}]}, {"order": {"order_id": "k1"}, "books": []}]
    assert keys_of(entries, listing=False) == {3, 5, ("order", "k1")}
    assert keys_of([{"books": [{"id": 3}]}], listing=True) == {3, LISTING}


def test_a_read_of_another_key_is_answered_at_once():
    doubts = Doubts(lambda rows, epoch: True, patience=5.0)
    doubts.begin(Write(1, frozenset({1})))
    started = time.monotonic()
    assert doubts.settled(reader(["book 2"]), (2,), at(1)) == "book 2"
    assert time.monotonic() - started < 0.1


def test_a_read_waits_for_the_write_it_may_have_seen():
    doubts, value = Doubts(lambda rows, epoch: True, patience=5.0), ["new, not acknowledged"]
    write = Write(7, frozenset({1}))
    doubts.begin(write)
    answered = []

    def acknowledge():
        time.sleep(0.2)
        answered.append(time.monotonic())
        doubts.answered(write)

    threading.Thread(target=acknowledge).start()
    assert doubts.settled(reader(value), (1,), at(7)) == "new, not acknowledged"
    assert answered, "the read returned before the write it saw was acknowledged"


def test_a_read_does_not_wait_for_writes_after_what_it_read():
    doubts = Doubts(lambda rows, epoch: True, patience=5.0)
    doubts.begin(Write(9, frozenset({1})))  # committed after the read: not seen
    started = time.monotonic()
    assert doubts.settled(reader(["as of 8"]), (1,), at(8)) == "as of 8"
    assert time.monotonic() - started < 0.1


def test_a_write_not_answered_within_patience_makes_the_read_a_503():
    doubts = Doubts(lambda rows, epoch: True, patience=0.2)
    doubts.begin(Write(3, frozenset({LISTING})))
    with pytest.raises(ApiError) as refused:
        doubts.settled(reader(["page"]), (LISTING,), at(3))
    assert refused.value.status == 503


def test_a_failed_write_stays_in_doubt_until_its_rows_landed():
    landed = [False]
    doubts = Doubts(lambda rows, epoch: landed[0], patience=0.2)
    write = Write(4, frozenset({4}), ((1, "catalog-2", {}),), 7)
    doubts.begin(write)
    doubts.answered(write, failed=True)
    assert doubts.unsure((4,), 4) and not doubts.unsure((5,), 4)
    with pytest.raises(ApiError):
        doubts.settled(reader(["x"]), (4,), at(4))
    landed[0] = True  # a later round delivered it, and the behind copy lapsed
    assert not doubts.unsure((4,), 4)
    assert doubts.settled(reader(["x"]), (4,), at(4)) == "x"
