"""The stale-read checker of the partition suite, on hand-made histories."""

from __future__ import annotations

from tests.support.history import (
    History,
    Read,
    Write,
    backward_reads,
    longest_gap,
    read_problems,
    stale_reads,
    unwritten_reads,
)


def history(writes, reads) -> History:
    h = History()
    h.writes = [Write(1, p, s, e, a) for p, s, e, a in writes]
    h.reads = [Read(1, p, s, e, "fe") for p, s, e in reads]
    return h


def test_read_after_an_acknowledged_write_must_see_it():
    h = history([(10, 0.0, 1.0, True)], [(9, 1.5, 1.6)])
    assert len(stale_reads(h)) == 1


def test_read_overlapping_the_write_may_see_either_value():
    h = history([(10, 0.0, 1.0, True)], [(9, 0.5, 1.2), (10, 0.5, 1.2)])
    assert stale_reads(h) == []


def test_unacknowledged_writes_never_make_a_read_stale():
    h = history([(10, 0.0, 1.0, True), (11, 1.0, 2.0, False)], [(10, 3.0, 3.1), (11, 3.0, 3.1)])
    assert stale_reads(h) == []


def test_newest_acknowledged_value_counts_not_the_last_one_listed():
    h = history([(10, 0.0, 1.0, True), (11, 1.0, 2.0, True)], [(10, 2.5, 2.6)])
    assert "11" in stale_reads(h)[0]


def test_longest_gap_counts_the_edges():
    assert longest_gap([2.0, 3.0], 0.0, 10.0) == 7.0
    assert longest_gap([], 0.0, 4.0) == 4.0


def test_a_read_of_a_price_nobody_wrote_is_flagged():
    h = history([(10, 0.0, 1.0, True)], [(10, 1.5, 1.6), (9.5, 1.5, 1.6)])
    h.initial[1] = 9
    assert stale_reads(h) != []  # 9.5 < 10: stale too, but that is not why it is wrong
    assert unwritten_reads(h) == ["read of book 1 via fe: 9.5, a price nobody wrote"]


def test_the_initial_price_and_unanswered_writes_may_be_read():
    h = history([(11, 0.0, 1.0, False)], [(9, 0.1, 0.2), (11, 0.5, 0.6)])
    h.initial[1] = 9
    assert read_problems(h) == []


def test_a_read_that_ended_before_its_value_was_written_is_flagged():
    h = history([(10, 2.0, 3.0, True)], [(10, 0.5, 1.5), (10, 1.5, 2.5)])
    h.initial[1] = 9
    problems = unwritten_reads(h)
    assert len(problems) == 1 and "first written 0.500s later" in problems[0]


def test_a_read_may_not_go_back_below_a_read_that_had_ended():
    # The write of 11 failed (no answer), so no read is stale; but once a reader saw
    # 11 and the write was over, a read begun after that must not see 10.
    h = history(
        [(10, 0.0, 1.0, True), (11, 1.0, 2.2, False)],
        [(11, 1.5, 2.0), (10, 2.5, 2.6), (10, 1.9, 2.1)],
    )
    h.initial[1] = 9
    assert stale_reads(h) == [] and unwritten_reads(h) == []
    problems = backward_reads(h)
    assert len(problems) == 1 and "10 after 11 was read via fe" in problems[0]
    assert read_problems(h) == problems


def test_while_the_higher_write_is_unanswered_only_the_strict_check_flags_going_back():
    # Design §7: until a write is acknowledged, the writer may answer the new price
    # while a copy with a valid lease still answers the old one.
    h = history(
        [(10, 0.0, 1.0, True), (11, 1.0, 5.0, True)],
        [(11, 1.5, 2.0), (10, 2.5, 2.6)],
    )
    h.initial[1] = 9
    assert backward_reads(h) == [] and read_problems(h) == []
    assert len(backward_reads(h, allow_in_flight=False)) == 1


def test_an_acknowledged_write_binds_later_reads_both_ways():
    h = history([(10, 0.0, 1.0, True), (11, 1.0, 2.0, True)], [(11, 1.5, 1.8), (10, 2.5, 2.6)])
    h.initial[1] = 9
    assert len(stale_reads(h)) == 1 and len(backward_reads(h)) == 1


def test_reads_that_overlap_may_return_either_order():
    h = history([(10, 0.0, 1.0, True), (11, 1.0, 5.0, False)], [(11, 1.5, 2.0), (10, 1.9, 2.1)])
    h.initial[1] = 9
    assert backward_reads(h) == []


def test_reads_of_other_books_do_not_count():
    h = history([(10, 0.0, 1.0, True)], [(10, 1.5, 2.0)])
    h.reads.append(Read(2, 5, 2.5, 2.6, "fe"))
    h.initial.update({1: 9, 2: 5})
    assert read_problems(h) == []
