"""catalog.doubt: what the writer committed and has not acknowledged is read by no one."""

from __future__ import annotations

import threading
import time

import pytest

from catalog.doubt import LISTING, Doubts, Failed, keys_of
from common.web import ApiError


def reader(value: list):
    return lambda: value[0]


def test_keys_are_the_books_the_decisions_and_the_listing_a_write_changes():
    entries = [{"books": [{"id": 3}, {"id": 5}]}, {"order": {"order_id": "k1"}, "books": []}]
    assert keys_of(entries, listing=False) == {3, 5, ("order", "k1")}
    assert keys_of([{"books": [{"id": 3}]}], listing=True) == {3, LISTING}


def test_a_read_with_no_write_in_doubt_is_answered_at_once():
    doubts = Doubts(lambda rows, epoch: True, patience=5.0)
    doubts.begin(frozenset({1}))
    started = time.monotonic()
    assert doubts.settled(reader(["book 2"]), (2,)) == "book 2"
    assert time.monotonic() - started < 0.1


def test_a_read_waits_for_the_write_in_flight_and_reads_again_after_it():
    doubts, value = Doubts(lambda rows, epoch: True, patience=5.0), ["old"]
    doubts.begin(frozenset({1}))
    value[0] = "new, not yet acknowledged"

    def acknowledge():
        time.sleep(0.2)
        value[0] = "new"
        doubts.answered(frozenset({1}))

    threading.Thread(target=acknowledge).start()
    assert doubts.settled(reader(value), (1,)) == "new"


def test_a_write_not_answered_within_patience_makes_the_read_a_503():
    doubts = Doubts(lambda rows, epoch: True, patience=0.2)
    doubts.begin(frozenset({LISTING}))
    with pytest.raises(ApiError) as refused:
        doubts.settled(reader(["page"]), (LISTING,))
    assert refused.value.status == 503


def test_a_failed_write_stays_in_doubt_until_its_rows_landed():
    landed = [False]
    doubts = Doubts(lambda rows, epoch: landed[0], patience=0.2)
    keys = frozenset({4})
    doubts.begin(keys)
    doubts.answered(keys, Failed(keys, ((1, "catalog-2", {}),), 7))
    assert doubts.unsure((4,)) and not doubts.unsure((5,))
    with pytest.raises(ApiError):
        doubts.settled(reader(["x"]), (4,))
    landed[0] = True  # a later round delivered it, and the behind copy lapsed
    assert not doubts.unsure((4,))
    assert doubts.settled(reader(["x"]), (4,)) == "x"


def test_two_writes_of_one_book_keep_it_in_doubt_until_both_are_answered():
    doubts = Doubts(lambda rows, epoch: True, patience=1.0)
    doubts.begin(frozenset({9}))
    doubts.begin(frozenset({9}))
    doubts.answered(frozenset({9}))
    assert doubts.unsure((9,))
    doubts.answered(frozenset({9}))
    assert not doubts.unsure((9,))
