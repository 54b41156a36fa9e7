"""`bazar check`: do the replicas of each service hold identical data?

Reads every replica's SQLite file directly (read-only), as an outside
checker would, so it works whether the nodes are up or not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.config import Cluster

QUERIES = {
    "catalog": {
        "books": "SELECT id, title, topic, cost, quantity, version, deleted_at, delete_comment "
        "FROM books ORDER BY id",
        "order_decisions": "SELECT order_id, book_id, quantity, status, total, items "
        "FROM order_decisions ORDER BY order_id",
        "book_keys": "SELECT key, book_id, digest FROM book_keys ORDER BY key",
    },
    "order": {
        "orders": "SELECT order_id, book_id, quantity, total, status, created_at FROM orders "
        "ORDER BY order_id",
        "order_items": "SELECT order_id, book_id, quantity, unit_price FROM order_items "
        "ORDER BY order_id, book_id",
    },
}


def read_rows(path: Path, query: str) -> list[tuple]:
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(query).fetchall()
    except sqlite3.OperationalError:  # a node that never created its tables
        return []
    finally:
        conn.close()


def compare(cluster: Cluster) -> tuple[bool, list[str]]:
    """(all identical, report lines)."""
    ok, report = True, []
    for service, tables in QUERIES.items():
        nodes = cluster.of(service)
        for table, query in tables.items():
            states = {n.name: read_rows(cluster.db_path(n.name), query) for n in nodes}
            first_name, first = next(iter(states.items()))
            for name, rows in states.items():
                if rows != first:
                    ok = False
                    diff = len(set(rows) ^ set(first))
                    report.append(
                        f"DIFFER {service} {table}: {name} vs {first_name}: "
                        f"{len(rows)} vs {len(first)} rows, {diff} differing"
                    )
            if all(rows == first for rows in states.values()):
                report.append(f"same   {service} {table}: {len(first)} rows on {', '.join(states)}")
    negatives = [
        r
        for n in cluster.of("catalog")
        for r in read_rows(cluster.db_path(n.name), QUERIES["catalog"]["books"])
        if r[4] < 0
    ]
    if negatives:
        ok = False
        report.append(f"NEGATIVE stock: {negatives}")
    return ok, report
