#!/usr/bin/env python3
"""How fast `bazar import` fills the catalog (issue 23, docs/performance.md "Import").

    .venv/bin/python scripts/import_rate.py [--rows 100000] [--batch 1000] [--config F]

Writes `--rows` distinct books (`loadtests/titles.py`, a fixed seed) to a CSV
file and imports it twice through the CLI, as an operator would: the first
run adds every row, the second skips every row. Prints rows/s of each, then
checks the replicas (`bazar check`) and shows each node's RSS and disk.
Without `--config` it starts a cluster of its own (default tuning) in a
temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtests"))

from titles import import_file, write_file  # noqa: E402

from common.config import load_cluster  # noqa: E402
from common.ops import procs  # noqa: E402

DEFAULTS = {"health_period": 0.5, "sender_period": 0.5, "startup_grace": 5.0, "cache_ttl": 60.0}


def main() -> int:
    args = _parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="bazar-import-") as tmp:
        started = None
        config = args.config
        if config is None:
            from tests.support.cluster import LocalCluster

            started = LocalCluster(Path(tmp) / "cluster", tuning=DEFAULTS).up()
            config = str(started.config_path)
        try:
            return _measure(Path(tmp), config, args)
        finally:
            if started is not None:
                started.down()


def _measure(tmp: Path, config: str, args) -> int:
    books = write_file(tmp / "books.csv", args.rows, args.seed)
    print(f"{args.rows} rows, {books.stat().st_size / 1e6:.1f} MB of CSV, batches of {args.batch}")
    for run in ("first (adds)", "second (skips)"):
        took, out = import_file(config, books, args.batch)
        print(f"{run}: {took:.1f} s, {args.rows / took:,.0f} rows/s; {out}")
    check = subprocess.run(  # noqa: S603  # nosec B603: our own CLI, our own arguments
        [sys.executable, "-m", "common.ops.cli", "check", "--config", config],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    print(check.stdout.strip().splitlines()[-1])
    for line in _nodes(load_cluster(config)):
        print(line)
    return check.returncode


def _nodes(cluster) -> list[str]:
    """Each node's worker RSS and its database files on disk."""
    lines = []
    for node in cluster.nodes.values():
        rss = _rss(procs.ready_file(cluster, node))
        db = cluster.db_path(node.name)
        disk = sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())
        lines.append(f"  {node.name:<12} RSS {rss:6.1f} MB   disk {disk / 1e6:7.1f} MB")
    return lines


def _rss(ready: Path) -> float:
    import json

    try:
        worker = json.loads(ready.read_text())["worker"]
        status = Path(f"/proc/{worker}/status").read_text()
    except (OSError, ValueError, KeyError):
        return float("nan")
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
    return int(kb) / 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--config", help="a running cluster (default: start one)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
