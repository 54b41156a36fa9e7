#!/usr/bin/env python3
"""schemathesis against every node of a fresh cluster, with a table per operation.

    .venv/bin/python scripts/fuzz_run.py --max-examples 100

The suite runs the same thing with 25 examples (tests/fuzz). Prints the
requests sent per operation with the statuses that came back, and the
failures schemathesis reported; exits 1 if there were any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster import LocalCluster  # noqa: E402
from tests.support.fuzz import fuzz_node, table  # noqa: E402

NODES = ["frontend-1", "catalog-1", "catalog-2", "order-1", "order-2", "recovery-1"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bazar-fuzz-"))
    cluster = LocalCluster(root / "cluster").up()
    try:
        runs = [fuzz_node(cluster, node, root, args.max_examples) for node in NODES]
    finally:
        cluster.down()
    print(table(runs))
    failed = [run for run in runs if run.exit_code != 0]
    for run in failed:
        print(f"\n--- {run.node}: schemathesis exited {run.exit_code}\n{run.output[-8000:]}")
    print(f"reports: {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
