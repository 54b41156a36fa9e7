"""Seconds-long smoke runs of the load scenarios; full runs by hand (docs/performance.md)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

from loadtests import timeline
from tests.support.cluster import ROOT, LocalCluster


def test_locust_mix_runs_clean(shared_cluster, tmp_path):
    prefix = tmp_path / "mix"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "loadtests/locustfile.py",
        "--headless",
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "6s",
        "--host",
        shared_cluster.api.url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = {**os.environ, "BAZAR_CONFIG": str(shared_cluster.config_path)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]  # locust exits 1 on any failure
    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    assert {"/lookup/[id]", "/search/[topic]", "/buy/[id]"} <= set(rows)
    # Staff sign in with accounts the mix made as admin at the start (issue 22).
    assert int(rows["/login"]["Request Count"]) >= 1
    assert int(rows["Aggregated"]["Request Count"]) > 50
    assert rows["Aggregated"]["Failure Count"] == "0"


def test_failover_runner_kills_heals_and_checks(tmp_path):
    cluster = LocalCluster(tmp_path / "c").up()
    try:
        command = [
            sys.executable,
            "loadtests/failover.py",
            "--config",
            str(cluster.config_path),
            "--duration",
            "14",
            "--users",
            "6",
            "--schedule",
            "3:primary,8:order-1",
            "--downtime",
            "2",
            "--window",
            "4",
            "--out",
            str(tmp_path / "run"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    finally:
        cluster.discard()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-2000:]
    assert "invariants: hold" in out
    assert "kill catalog-1" in out and "start order-1" in out
    for route in ("/lookup/[id]", "/search/[topic]", "/buy/[id]", "/update/price/[id]"):
        assert route in out
    assert "p50/p95/p99 ms per 4s window" in out
    check_timeline(tmp_path / "run", out)


def check_timeline(prefix, out: str) -> None:
    """The run's timeline: a row per second and route over the whole run, the faults in
    their seconds, a recovery per fault, a real PNG; the pause and recoveries printed."""
    with open(f"{prefix}_timeline.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == timeline.TIMELINE_COLUMNS
    routes = {r["route"] for r in rows}
    assert {"GET /lookup/[id]", "GET /search/[topic]", "POST /buy/[id]"} <= routes
    seconds = sorted({int(r["second"]) for r in rows})
    assert seconds == list(range(len(seconds))) and len(seconds) >= 14
    assert len(rows) == len(seconds) * len(routes)
    assert sum(int(r["ok"]) for r in rows) > 50
    in_kill = {int(r["second"]) for r in rows if "kill catalog-1" in r["faults"]}
    assert 3 in in_kill and {int(r["second"]) for r in rows if "kill order-1" in r["faults"]}
    with open(f"{prefix}_faults.csv", newline="") as f:
        faults = list(csv.DictReader(f))
    assert [r["fault"] for r in faults] == ["kill catalog-1", "kill order-1"]
    for r in faults:
        assert 2.5 < float(r["start_s"]) < float(r["end_s"])
        assert 0 < float(r["recovery_s"]) < 10, r  # writes came back after every kill
    png = open(f"{prefix}_timeline.png", "rb").read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 30_000
    assert "longest write pause:" in out
    assert re.search(r"kill catalog-1 at 3\.\d s: first acknowledged write [\d.]+ s after", out)
    assert f"plot:     {prefix}_timeline.png" in out
