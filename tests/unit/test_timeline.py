"""The timeline analysis (loadtests/timeline.py) on synthetic request histories."""

from __future__ import annotations

import csv
import threading

import pytest

from loadtests import timeline
from loadtests.timeline import Fault, Outcome, Recorder

ORIGIN = 1000.0  # monotonic seconds at the start of the schedule
BUY, LOOKUP = "POST /buy/[id]", "GET /lookup/[id]"


def buy(ended: float, latency: float = 0.01, status: int = 201) -> Outcome:
    ok = status in (201, 410)
    return Outcome(BUY, ORIGIN + ended - latency, ORIGIN + ended, status, ok, True)


def lookup(ended: float, latency: float = 0.002, ok: bool = True) -> Outcome:
    return Outcome(LOOKUP, ORIGIN + ended - latency, ORIGIN + ended, 200 if ok else 503, ok, False)


def fault(label: str, start: float, end: float) -> Fault:
    return Fault(label, ORIGIN + start, ORIGIN + end)


def test_percentile_interpolates_and_handles_few_values():
    assert timeline.percentile([], 50) is None
    assert timeline.percentile([7.0], 99) == 7.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert timeline.percentile(values, 50) == pytest.approx(50.5)
    assert timeline.percentile(values, 99) == pytest.approx(99.01)


def test_per_second_buckets_every_second_and_route_with_counts_and_percentiles():
    outcomes = [lookup(0.1 + i / 100, latency=(i + 1) / 1000) for i in range(10)]  # 1..10 ms
    outcomes += [lookup(2.5, ok=False), buy(2.6, latency=0.2), buy(2.7, latency=0.4)]
    outcomes += [lookup(-0.5), lookup(3.2)]  # before the origin, after the end: dropped
    buckets = timeline.per_second(outcomes, ORIGIN, ORIGIN + 3.0)
    assert [(b.second, b.route) for b in buckets] == [
        (s, r) for s in range(3) for r in (LOOKUP, BUY)
    ]
    first = {b.route: b for b in buckets if b.second == 0}
    assert first[LOOKUP].requests == 10 and first[LOOKUP].ok == 10 and first[LOOKUP].errors == 0
    assert first[LOOKUP].p50_ms == pytest.approx(5.5)
    assert first[LOOKUP].p99_ms == pytest.approx(9.91)
    assert first[BUY].requests == 0 and first[BUY].p50_ms is None and first[BUY].p99_ms is None
    idle = [b for b in buckets if b.second == 1]
    assert all(b.requests == 0 for b in idle)  # a second without answers is still a row
    last = {b.route: b for b in buckets if b.second == 2}
    assert (last[LOOKUP].requests, last[LOOKUP].errors) == (1, 1)
    assert last[BUY].requests == 2 and last[BUY].p50_ms == pytest.approx(300.0)


def test_longest_pause_is_the_widest_gap_between_acknowledged_writes_and_says_where():
    outcomes = [buy(t) for t in (0.5, 1.0, 1.5, 5.5, 6.0)]
    outcomes += [buy(3.0, status=503), buy(4.0, status=410), lookup(3.5)]  # not acknowledged
    acks = timeline.ack_times(outcomes)
    assert acks == [ORIGIN + t for t in (0.5, 1.0, 1.5, 5.5, 6.0)]
    pause = timeline.longest_pause(acks, ORIGIN, ORIGIN + 7.0, ORIGIN)
    assert (pause.length, pause.start, pause.end) == pytest.approx((4.0, 1.5, 5.5))
    faults = [fault("kill catalog-1", 1.2, 4.0), fault("kill order-1", 6.5, 6.8)]
    assert timeline.where(pause, faults, ORIGIN) == "during kill catalog-1"
    # no write at all: the whole span is the pause; the span's ends bound it
    empty = timeline.longest_pause([], ORIGIN + 1, ORIGIN + 3, ORIGIN)
    assert (empty.length, empty.start, empty.end) == pytest.approx((2.0, 1.0, 3.0))


def test_recovery_counts_from_fault_start_and_end_to_the_first_write_started_after_each():
    outcomes = [
        buy(1.9, latency=0.3),  # started before the fault: not a sign of recovery
        buy(3.0, latency=0.5),  # started 2.5: after the start, before the end
        buy(5.0, latency=0.1),  # started 4.9: after the end (4.5)
        buy(5.2, status=503),
    ]
    faults = [fault("kill catalog-1", 1.8, 4.5), fault("isolate order-1", 9.0, 10.0)]
    found = timeline.recoveries(faults, outcomes, ORIGIN)
    assert found[0].first_write == pytest.approx(3.0)
    assert found[0].after_start == pytest.approx(1.2)
    assert found[0].after_end == pytest.approx(0.5)
    assert found[1].first_write is None and found[1].after_start is None
    lines = timeline.summary_lines(
        timeline.longest_pause(timeline.ack_times(outcomes), ORIGIN, ORIGIN + 10, ORIGIN),
        found,
        faults,
        ORIGIN,
    )
    assert lines[0].startswith("longest write pause: 5.00 s, from 5.00 s to 10.00 s")
    assert "kill catalog-1 at 1.8 s: first acknowledged write 1.20 s after it began" in lines[1]
    assert "0.50 s after it ended" in lines[1]
    assert "isolate order-1 at 9.0 s: no acknowledged write after it" in lines[2]


def test_recorder_is_thread_safe_and_round_trips_through_its_file(tmp_path):
    recorder = Recorder()

    def record(n: int) -> None:
        for i in range(500):
            recorder.record(BUY, ORIGIN + i, ORIGIN + i + n / 10, 201, True, True)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = recorder.outcomes()
    assert len(outcomes) == 4000
    assert [o.ended for o in outcomes] == sorted(o.ended for o in outcomes)
    recorder.save(tmp_path / "raw.csv")
    assert Recorder.load(tmp_path / "raw.csv").outcomes() == outcomes


def test_outputs_have_the_columns_a_row_per_second_and_route_and_the_faults(tmp_path):
    outcomes = [lookup(t / 10) for t in range(0, 60)] + [buy(t / 2) for t in range(12)]
    outcomes += [buy(t) for t in (9.0, 9.5)]  # writes stop during the fault, come back after
    faults = [fault("kill catalog-1", 6.2, 8.0)]
    lines = timeline.write_outputs(
        outcomes, faults, ORIGIN, (ORIGIN, ORIGIN + 10), tmp_path / "run", "synthetic"
    )
    with open(tmp_path / "run_timeline.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == timeline.TIMELINE_COLUMNS
    assert {(int(r["second"]), r["route"]) for r in rows} == {
        (s, r) for s in range(10) for r in (LOOKUP, BUY)
    }
    in_fault = {int(r["second"]) for r in rows if r["faults"]}
    assert in_fault == {6, 7, 8}  # 6.2 .. 8.0 touches seconds 6, 7 and 8
    assert sum(int(r["requests"]) for r in rows) == len(outcomes)
    with open(tmp_path / "run_faults.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert list(row) == timeline.FAULT_COLUMNS
    assert row["fault"] == "kill catalog-1"
    assert float(row["recovery_s"]) == pytest.approx(2.8)  # 6.2 -> 9.0
    assert float(row["recovery_after_end_s"]) == pytest.approx(1.0)  # 8.0 -> 9.0
    assert lines[0].startswith("longest write pause: 3.50 s, from 5.50 s to 9.00 s")
    assert "(during kill catalog-1)" in lines[0]
    png = (tmp_path / "run_timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
