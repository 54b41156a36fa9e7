"""The wall-clock shim (tests/support/wallclock.c) in a plain Python process.

A child Python runs under the shim; the test moves its offset file and asks the
child for its clocks. The child's wall clock must follow every move at once, its
monotonic clock must not move at all (it is the host's), and its sleeps and timed
waits must take the time they say (what libfaketime breaks). Skipped without gcc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support import timefaults

WHY_NOT = timefaults.shim_missing()
if WHY_NOT:
    pytest.skip(f"the wall-clock shim cannot be built: {WHY_NOT}", allow_module_level=True)

CHILD = """
import datetime, json, subprocess, sys, threading, time
for _ in sys.stdin:
    wall, mono, now = time.time(), time.monotonic(), datetime.datetime.now(datetime.UTC)
    started = time.monotonic(); time.sleep(0.05); slept = time.monotonic() - started
    started = time.monotonic(); threading.Event().wait(0.05); waited = time.monotonic() - started
    date = int(subprocess.run(["date", "+%s"], capture_output=True, text=True).stdout)
    print(json.dumps({"wall": wall, "mono": mono, "now": now.timestamp(), "slept": slept,
                      "waited": waited, "date": date}), flush=True)
"""


class Child:
    """A Python process on `clock`, read on demand."""

    def __init__(self, clock: timefaults.WallClock):
        env = {**os.environ, **clock.env(timefaults.build_shim())}
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def read(self) -> tuple[float, float, dict]:
        """Our wall time just before and just after the child's reading, and the reading."""
        before = time.time()
        self.process.stdin.write("read\n")
        self.process.stdin.flush()
        reading = json.loads(self.process.stdout.readline())
        return before, time.time(), reading

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


@pytest.fixture
def clock(tmp_path):
    return timefaults.WallClock(tmp_path / "node.offset")


@pytest.fixture
def child(clock):
    child = Child(clock)
    yield child
    child.close()


def assert_offset(child: Child, offset: float) -> dict:
    before, after, reading = child.read()
    assert before + offset <= reading["wall"] <= after + offset, (offset, before, reading)
    assert before + offset <= reading["now"] <= after + offset + 1e-3, reading  # datetime.now
    assert int(before + offset) <= reading["date"] <= after + offset, reading  # a child of it
    return reading


@pytest.mark.parametrize("offsets", [(4.0, -90.25, 3600.0, -3600.0, 0.0)])
def test_the_wall_clock_jumps_at_once_and_the_monotonic_clock_never(clock, child, offsets):
    readings = []
    for offset in offsets:
        clock.set(offset)
        assert clock.offset == offset
        mono_before = time.monotonic()
        reading = assert_offset(child, offset)
        # CLOCK_MONOTONIC is the host's: the child's reading lies between two of ours
        assert mono_before <= reading["mono"] <= time.monotonic(), reading
        readings.append(reading)
    for reading in readings:
        assert 0.04 <= reading["slept"] < 1.0, reading
        assert 0.04 <= reading["waited"] < 1.0, reading  # libfaketime hangs here
    monos = [r["mono"] for r in readings]
    assert monos == sorted(monos)


def test_a_process_started_before_the_file_is_written_sees_it_change(tmp_path):
    clock = timefaults.WallClock(tmp_path / "late.offset")  # zero at the child's start
    child = Child(clock)
    try:
        assert_offset(child, 0.0)
        clock.set(-120.5)
        assert_offset(child, -120.5)
    finally:
        child.close()


def test_the_shim_is_built_once_per_source(tmp_path):
    first = timefaults.build_shim(tmp_path)
    made = first.stat().st_mtime_ns
    assert timefaults.build_shim(tmp_path) == first
    assert first.stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial file left
