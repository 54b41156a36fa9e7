"""The stale-read checker of the partition suite, on hand-made histories."""

from __future__ import annotations

from tests.support.history import History, Read, Write, longest_gap, stale_reads


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
