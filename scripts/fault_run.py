#!/usr/bin/env python3
"""The long fault run: buys and multi-book orders under a nemesis for minutes, then the invariants.

    .venv/bin/python scripts/fault_run.py --minutes 10 --catalogs 3
    sudo .venv/bin/python scripts/fault_run.py --minutes 10 --netns --partitions
    sudo .venv/bin/python scripts/fault_run.py --minutes 10 --partitions --time-faults

With --partitions (needs --netns, so root, `ip` and `nft`) the nemesis mixes
network cuts (one node isolated, random halves, the bridge split) with
kills and two front-ends serve. --time-faults adds SIGSTOP pauses (the lease
holder among them) and wall clocks set off and jumping, every node on a clock
of its own (tests/support/timenemesis.py). Two managers, signed in with
accounts of their own, raise the prices of two books that readers read through
every front-end, cached and not, and the checker flags any stale read, read of
a value nobody wrote, or read going back in time (tests/support/history.py); a
clerk adds books and changes their stock, and the audit trail must be identical
on every catalog with one entry per acknowledged staff write
(tests/support/audit_trail.py). About 40% of the purchases are orders of 2-4 books (POST
/orders), the rest single buys. Prints a summary table (partitions, kills,
acknowledged purchases, 410s and unknowns, each split single / multi, the
confirmed orders, their order_items lines and exact revenue, stale reads,
longest write pause, invariant violations) and exits 1 if any invariant is
violated (tests/support/faults.py and ledger.py list them), or if more reads
failed or writes paused longer than the bounds of tests/support/fault_report.py.

It also writes a timeline of the run (loadtests/timeline.py) under the
`--out` prefix: `<out>_timeline.csv` (per second and route: requests,
successes, errors, p50/p99 ms, faults in force), `<out>_faults.csv` (per
fault: start, end, time to the first acknowledged write after it) and
`<out>_timeline.png`, and prints the longest write pause and where it fell,
and each fault's recovery time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests import timeline  # noqa: E402
from tests.support import faults  # noqa: E402
from tests.support.cluster import LocalCluster  # noqa: E402
from tests.support.fault_report import MAX_READ_FAILURE_RATIO, max_write_pause  # noqa: E402
from tests.support.history import History  # noqa: E402
from tests.support.staff_member import StaffWrite  # noqa: E402
from tests.support.timenemesis import TIME_FAULTS, all_at_zero  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "loadtests" / "results"


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
    parser.add_argument(
        "--time-faults",
        action="store_true",
        help="SIGSTOP pauses (the holder among them), wall clocks off and jumping (issue 20)",
    )
    parser.add_argument(
        "--out", default=str(RESULTS / "fault_run"), help="prefix of the timeline CSVs and PNG"
    )
    args = parser.parse_args()
    netns = args.netns or args.partitions
    kinds = ("kill", "isolate", "halves", "bridge") if args.partitions else ("kill",)
    kinds += tuple(TIME_FAULTS) if args.time_faults else ()
    frontends = args.frontends or (2 if args.partitions else 1)
    counts = {"frontend": frontends, "catalog": args.catalogs, "order": args.orders, "recovery": 1}
    names = [f"{service}-{i}" for service, n in counts.items() for i in range(1, n + 1)]

    root = Path(tempfile.mkdtemp(prefix="bazar-faults-"))
    cluster = LocalCluster(
        root,
        catalogs=args.catalogs,
        orders=args.orders,
        frontends=frontends,
        netns=netns,
        tuning={"resolve_after": 3.0},
        clocks=all_at_zero(names) if args.time_faults else None,
    ).up()
    started = time.monotonic()
    recorder = timeline.Recorder()
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
            price_books=(1, 2),
            recorder=recorder,
            extra=TIME_FAULTS if args.time_faults else None,
        )
    finally:
        cluster.down()
        if not args.keep:  # its data and logs: 76 MB after a 6-minute run
            shutil.rmtree(root, ignore_errors=True)
    tuning = cluster.cluster.tuning
    pause = max_write_pause(args.downtime, tuning.lease_duration, tuning.read_timeout)
    beyond = report.out_of_bounds(MAX_READ_FAILURE_RATIO, pause)
    print(
        f"\nfault run: {args.minutes:g} min, {args.catalogs} catalogs, {args.orders} orders, "
        f"{frontends} front-ends, faults {'/'.join(kinds)}, {args.clients} clients, "
        f"seed {args.seed}, {time.monotonic() - started:.0f} s in all"
    )
    print(report.table())
    print("\n".join(f"  ! beyond its bounds: {line}" for line in beyond))
    title = f"fault_run.py: {args.clients} clients, faults {'/'.join(kinds)}, seed {args.seed}"
    print("\n".join(write_timeline(recorder, report, args.out, title)))
    print(f"files: {root}" if args.keep else "")
    return 1 if report.violations or beyond else 0


def write_timeline(recorder: timeline.Recorder, report: faults.Report, out: str, title: str):
    """The run's timeline files; the lines that name them, the pause and the recoveries."""
    if report.price_history is not None:
        recorder.add(price_outcomes(report.price_history))
    recorder.add(staff_outcomes([w for w in report.staff_writes if w.started >= report.span[0]]))
    found = [
        timeline.Fault(what.replace("--isolate | ", ""), began, ended)
        for began, ended, what in report.faults
    ]
    origin = report.span[0]
    return timeline.write_outputs(recorder.outcomes(), found, origin, report.span, out, title)


def price_outcomes(history: History) -> list[timeline.Outcome]:
    """The readers' answered price reads (their failed reads are counted, not timed)."""
    return [
        timeline.Outcome("GET /lookup/[id] (price reader)", r.started, r.ended, 200, True, False)
        for r in history.reads
    ]


ROUTES = {
    "price": "PUT /update/price/[id]",
    "quantity": "PUT /update/item/[id]",
    "add": "POST /books",
}


def staff_outcomes(writes: list[StaffWrite]) -> list[timeline.Outcome]:
    """Every staff write (the managers' prices, the clerk's books and stock), answered
    or not, as its client saw it."""
    return [
        timeline.Outcome(
            ROUTES.get(w.action, w.action), w.started, w.ended, w.status, w.outcome == "acked", True
        )
        for w in writes
    ]


if __name__ == "__main__":
    sys.exit(main())
