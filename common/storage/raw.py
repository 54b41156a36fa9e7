"""The statements a buy runs, on sqlite3's own cursor: Core statements compiled once.

A Core execute of a statement built once still costs 12-40 us of Python per call
(execution context, compiled-cache lookup, result metadata, more under load); the
same SQL on the DB-API cursor costs 1-2 us. A buy runs about a dozen statements
across the cluster, so those go this way. The SQL still comes from the Core
statements, so table and column names live once; their columns are plain INTEGER,
REAL and TEXT, so no type conversion is lost. It runs inside the caller's
transaction (the same DB-API connection; pysqlite begins before the first write).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement

_DIALECT = sqlite.dialect(paramstyle="named")


class Raw:
    """One statement as SQLite SQL with named parameters, and its constants."""

    def __init__(self, statement: ClauseElement, columns: list[str] | None = None):
        """`columns`: for an INSERT without values, the columns it fills."""
        compiled = statement.compile(dialect=_DIALECT, column_keys=columns)
        self.sql = str(compiled)
        # Literals Core turned into parameters (status = 'pending', version + 1).
        self.constants = {
            name: bind.value for bind, name in compiled.bind_names.items() if not bind.required
        }

    def run(self, conn: Connection, params: dict) -> sqlite3.Cursor:
        return driver(conn).execute(self.sql, {**self.constants, **params})

    def many(self, conn: Connection, rows: Iterable[dict]) -> sqlite3.Cursor:
        return driver(conn).executemany(self.sql, ({**self.constants, **r} for r in rows))

    def rows(self, conn: Connection, params: dict) -> list[dict]:
        """Every row the statement returns (SELECT, or RETURNING), as dicts."""
        cursor = self.run(conn, params)
        found = cursor.fetchall()  # to the end: a RETURNING statement is then done
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in found]

    def first(self, conn: Connection, params: dict) -> dict | None:
        found = self.rows(conn, params)
        return found[0] if found else None


def driver(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under a SQLAlchemy one (same transaction)."""
    return conn.connection.driver_connection
