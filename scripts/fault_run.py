#!/usr/bin/env python3
"""The long fault run: buys under a nemesis for minutes, then the invariants.

    .venv/bin/python scripts/fault_run.py --minutes 10 --catalogs 3
    sudo .venv/bin/python scripts/fault_run.py --minutes 10 --netns --partitions

With --partitions (needs --netns, so root, `ip` and `nft`) the nemesis mixes
network cuts (one node isolated, random halves, the bridge split) with
kills, two front-ends serve, and staff raise prices that readers check for
staleness. Prints a summary table (partitions, kills, acknowledged buys,
410s, unknowns, stale reads, longest write pause, invariant violations) and
exits 1 if any invariant is violated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import faults  # noqa: E402
from tests.support.cluster import LocalCluster  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--catalogs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between kills")
    parser.add_argument(
        "--downtime", type=float, default=3.0, help="max seconds a victim stays dead"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the cluster's files for a look")
    parser.add_argument("--netns", action="store_true", help="every node in its own namespace")
    parser.add_argument(
        "--partitions", action="store_true", help="cut the network too (implies --netns)"
    )
    parser.add_argument("--frontends", type=int, default=None, help="default: 2 with partitions")
    args = parser.parse_args()
    netns = args.netns or args.partitions
    kinds = ("kill", "isolate", "halves", "bridge") if args.partitions else ("kill",)
    frontends = args.frontends or (2 if args.partitions else 1)

    root = Path(tempfile.mkdtemp(prefix="bazar-faults-"))
    cluster = LocalCluster(
        root,
        catalogs=args.catalogs,
        orders=args.orders,
        frontends=frontends,
        netns=netns,
        tuning={"resolve_after": 3.0},
    ).up()
    started = time.monotonic()
    try:
        report = faults.run(
            cluster,
            duration=args.minutes * 60,
            clients=args.clients,
            interval=args.interval,
            downtime=args.downtime,
            stock={**dict.fromkeys(range(1, 7), 1_000_000), 7: 300},
            seed=args.seed,
            kinds=kinds,
            price_books=(1, 2) if args.partitions else (),
        )
    finally:
        cluster.down()
    print(
        f"\nfault run: {args.minutes:g} min, {args.catalogs} catalogs, {args.orders} orders, "
        f"{frontends} front-ends, faults {'/'.join(kinds)}, {args.clients} clients, "
        f"seed {args.seed}, {time.monotonic() - started:.0f} s in all"
    )
    print(report.table())
    print(f"files: {root}" if args.keep else "")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
