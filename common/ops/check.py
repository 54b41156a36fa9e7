"""`bazar check`: do the replicas of each service hold identical data?

Reads every replica's SQLite file directly (read-only), as an outside
checker would, so it works whether the nodes are up or not. A replica
without its file or one of its tables is an error, not an empty table:
replicas that all lack a table are not "identical".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.config import Cluster

QUERIES = {
    "catalog": {
        # `stamp` too: a failover's delta base relies on replicas agreeing on positions.
        "books": "SELECT id, title, topic, cost, quantity, version, deleted_at, delete_comment, "
        "stamp FROM books ORDER BY id",
        "order_decisions": "SELECT order_id, book_id, quantity, status, total, items, stamp "
        "FROM order_decisions ORDER BY order_id",
        "book_keys": "SELECT key, book_id, digest, stamp FROM book_keys ORDER BY key",
        "staff_accounts": "SELECT name, role, password_hash, created_at, disabled_at, version, "
        "stamp FROM staff_accounts ORDER BY name",
        "audit_log": "SELECT id, write_id, at, staff, role, action, book_id, before, after, "
        "request_id, stamp FROM audit_log ORDER BY id",
    },
    "order": {
        "orders": "SELECT order_id, book_id, quantity, total, status, created_at FROM orders "
        "ORDER BY order_id",
        "order_items": "SELECT order_id, book_id, quantity, unit_price FROM order_items "
        "ORDER BY order_id, book_id",
    },
}
SECRET_COLUMNS = {"password_hash"}  # a difference is named, its values are not printed
LATER = ", stamp FROM "  # a file of a version before positions has no stamp: NULL there


def _fitted(conn: sqlite3.Connection, query: str) -> str:
    """`query`, reading NULL for a stamp column the file's table does not have yet."""
    if LATER not in query:
        return query
    table = query.split(LATER)[1].split()[0]
    have = {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
    return query if "stamp" in have else query.replace(LATER, ", NULL FROM ")


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


def table_rows(path: Path, query: str) -> tuple[list[tuple] | None, str]:
    """(the query's rows, ""), or (None, why not) when the file or the table is missing."""
    if not path.exists():
        return None, "no database file"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(_fitted(conn, query)).fetchall(), ""
    except sqlite3.Error as e:  # no such table or column, not a database: said, not raised
        return None, str(e)
    finally:
        conn.close()


def compare(cluster: Cluster) -> tuple[bool, list[str]]:
    """(all identical, report lines)."""
    ok, report = True, []
    for service, tables in QUERIES.items():
        for table, query in tables.items():
            found = {
                n.name: table_rows(cluster.db_path(n.name), query) for n in cluster.of(service)
            }
            same, lines = _compare_table(f"{service} {table}", found, columns_of(query))
            ok, report = ok and same, report + lines
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


def columns_of(query: str) -> list[str]:
    """The column names of one of QUERIES (`SELECT a, b FROM ...`)."""
    selected = query.split("SELECT", 1)[1].split(" FROM ", 1)[0]
    return [column.strip() for column in selected.split(",")]


def first_difference(
    rows: list[tuple], first: list[tuple], name: str, first_name: str, columns: list[str]
) -> str:
    """The first row one replica has and the other has not, and, when the other has a
    row with the same key (the first column), the columns they differ in."""
    mine, theirs = set(rows), set(first)
    only_mine = [r for r in rows if r not in theirs]
    only_theirs = [r for r in first if r not in mine]
    odd = [(r, name, first_name, only_theirs) for r in only_mine]
    odd += [(r, first_name, name, only_mine) for r in only_theirs]
    if not odd:
        return "the same rows, some twice"
    row, where, other, others = min(odd, key=lambda item: _sort_key(item[0][0]))
    twin = next((o for o in others if o[0] == row[0]), None)
    if twin is None:
        return f"{columns[0]} {_short(row[0])} only on {where}"
    differ = [i for i, (x, y) in enumerate(zip(row, twin, strict=True)) if x != y]
    shown = ", ".join(
        f"{columns[i]} differs"
        if columns[i] in SECRET_COLUMNS  # not on a terminal, not in CI logs
        else f"{columns[i]} {_short(row[i])} vs {_short(twin[i])}"
        for i in differ
    )
    return f"{columns[0]} {_short(row[0])}: {shown} ({where} vs {other})"


def _sort_key(value) -> tuple:
    return (value is None, str(type(value)), value if value is not None else 0)


def _short(value, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _compare_table(what: str, found: dict[str, tuple[list[tuple] | None, str]], columns: list[str]):
    """(identical on every replica, report lines) for one table."""
    if not found:
        return True, []  # a service with no replicas: nothing to differ
    missing = [f"{name} ({why})" for name, (rows, why) in found.items() if rows is None]
    states = {name: rows for name, (rows, _) in found.items() if rows is not None}
    lines = [f"MISSING {what}: unreadable on {', '.join(missing)}"] if missing else []
    if not states:
        return False, lines
    first_name, first = next(iter(states.items()))
    for name, rows in states.items():
        if rows != first:
            diff = len(set(rows) ^ set(first))
            lines.append(
                f"DIFFER {what}: {name} vs {first_name}: "
                f"{len(rows)} vs {len(first)} rows, {diff} differing; "
                f"{first_difference(rows, first, name, first_name, columns)}"
            )
    same = all(rows == first for rows in states.values())
    if same and not missing:
        lines.append(f"same   {what}: {len(first)} rows on {', '.join(states)}")
    return same and not missing, lines
