"""Time the revenue report over a year of orders (issue 23, docs/performance.md).

Fills a standalone order SQLite (the order node's own tables) with
`--orders` orders spread over a year, stored in time order as an order
server stores them, with random ids (uuid4 hex, like the order server's),
1-3 lines each at whole-cent prices, 9 in 10 confirmed; then times
`reports.revenue` for the whole year by day and by book (and one day by
book), `--runs` times each, and prints p50/p99 and a digest of each answer (the same digest
before and after a change: the same report).

    .venv/bin/python scripts/report_scale.py --db /tmp/orders-1m.sqlite3
    # the code before, on the same file (no reports index, the old module):
    git show d2f575d:order/reports.py > /tmp/old_reports.py
    .venv/bin/python scripts/report_scale.py --db /tmp/orders-1m.sqlite3 \\
        --reports /tmp/old_reports.py --drop-index
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine  # noqa: E402

from order.models import db  # noqa: E402

YEAR = date(2026, 1, 1), date(2026, 12, 31)
DAY = date(2026, 6, 15), date(2026, 6, 15)
SCENARIOS = (
    ("year by day", YEAR, "day"),
    ("year by book", YEAR, "book"),
    ("a day by book", DAY, "book"),
)
BOOKS = 500
BATCH = 20_000


def fill(path: Path, count: int, seed: int) -> None:
    """`count` orders with their lines, over YEAR, into a new file at `path`."""
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    engine.dispose()
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    prices = {book: rng.randint(1, 20_000) for book in range(1, BOOKS + 1)}  # cents
    start = datetime(*YEAR[0].timetuple()[:3], tzinfo=UTC)
    seconds = int((YEAR[1] - YEAR[0] + timedelta(days=1)).total_seconds())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    moments = sorted(rng.randrange(seconds * 1000) for _ in range(count))  # milliseconds
    for first in range(0, count, BATCH):
        orders, lines = [], []
        for n in range(first, min(count, first + BATCH)):
            order_id = f"{rng.getrandbits(128):032x}"
            at = start + timedelta(milliseconds=moments[n])
            books = rng.sample(range(1, BOOKS + 1), rng.randint(1, 3))
            confirmed = rng.random() < 0.9
            items = [(order_id, b, rng.randint(1, 4), prices[b]) for b in books]
            cents = sum(q * p for _, _, q, p in items) if confirmed else 0
            orders.append(
                (
                    order_id,
                    books[0] if len(books) == 1 else None,
                    sum(q for _, _, q, _ in items),
                    cents / 100,
                    "confirmed" if confirmed else "rejected",
                    at.isoformat(timespec="milliseconds"),
                )
            )
            lines += [(o, b, q, f"{p // 100}.{p % 100:02d}") for o, b, q, p in items]
        conn.executemany(
            "INSERT INTO orders (order_id, book_id, quantity, total, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            orders,
        )
        conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?)", lines)
        conn.commit()
    conn.close()


def load_reports(path: str | None):
    if path is None:
        from order import reports

        return reports
    spec = importlib.util.spec_from_file_location("reports_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_runs(reports, engine, period, by: str, runs: int) -> tuple[list[float], str]:
    times, digest = [], ""
    for _ in range(runs):
        began = time.perf_counter()
        answer = reports.revenue(engine, *period, by)
        times.append(time.perf_counter() - began)
        digest = hashlib.sha256(json.dumps(answer, sort_keys=True).encode()).hexdigest()[:16]
    return times, digest


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, default=Path(tempfile.gettempdir()) / "bazar-report-scale.sqlite3"
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--reports", help="a reports module file to time instead of ours")
    parser.add_argument("--drop-index", action="store_true", help="time without the index")
    args = parser.parse_args()
    if not args.db.exists():
        began = time.perf_counter()
        fill(args.db, args.orders, args.seed)
        print(f"filled {args.db} with {args.orders} orders in {time.perf_counter() - began:.0f} s")
    with sqlite3.connect(args.db) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_orders_created_at")
        if not args.drop_index:
            conn.execute("CREATE INDEX ix_orders_created_at ON orders (created_at)")
    reports = load_reports(args.reports)
    engine = create_engine(f"sqlite:///{args.db}")
    for name, period, by in SCENARIOS:
        times, digest = time_runs(reports, engine, period, by, args.runs)
        print(
            f"{name:12}: p50 {percentile(times, 0.5) * 1000:8.1f} ms  "
            f"p99 {percentile(times, 0.99) * 1000:8.1f} ms  ({args.runs} runs, answer {digest})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
