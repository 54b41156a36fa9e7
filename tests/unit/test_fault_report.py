"""The fault run's bounds: too many failed reads or too long without a write fails it."""

from __future__ import annotations

from tests.support.fault_report import MAX_READ_FAILURE_RATIO, Report, max_write_pause


def test_a_run_within_its_bounds_passes():
    report = Report(reads=1000, read_failures=10, price_reads=900, price_read_failures=20)
    report.longest_pause = 4.0
    assert report.read_failure_ratio == 30 / 1920
    assert report.out_of_bounds(MAX_READ_FAILURE_RATIO, max_write_pause(2.0, 2.5, 3.0)) == []


def test_too_many_failed_reads_fail_the_run():
    report = Report(reads=100, read_failures=2, price_reads=50, price_read_failures=8)
    assert report.out_of_bounds(0.05, 10.0) == ["6.33% of reads failed, more than 5%"]  # 10 of 158


def test_too_long_without_a_write_fails_the_run():
    report = Report(reads=100, longest_pause=11.0)
    pause = max_write_pause(2.5, 2.5, 3.0)
    assert pause == 10.0
    assert report.out_of_bounds(0.05, pause) == [
        "no write was acknowledged for 11.00 s, more than 10.0 s"
    ]


def test_the_table_names_every_fault_kind_and_the_minimum():
    report = Report(fault_minimum=2)
    report.made.update({"kill": 3, "isolate": 2})
    assert "isolate=2, kill=3 (at least 2 each)" in report.table()
