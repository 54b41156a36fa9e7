"""Bring a node's SQLite file made by an older Bazar up to today's tables.

`create_all` makes missing tables but never changes an existing one. Here a
column the models added is added (ALTER TABLE ADD COLUMN: new columns are
nullable), an index the models added is made (`create_all` makes indexes only
with their table), and a table whose column has since become nullable is
rebuilt with its rows (SQLite cannot drop a NOT NULL in place). All of it runs in one
transaction, so a crash midway leaves the old file as it was.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

log = logging.getLogger(__name__)
DIALECT = sqlite_dialect.dialect()


def upgrade(path: Path, metadata: MetaData) -> list[str]:
    """Upgrade the tables of `metadata` in the file at `path`; return what was done."""
    done: list[str] = []
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table in metadata.sorted_tables:
            done += _upgrade_table(conn, table)
            done += _add_indexes(conn, table)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    for step in done:
        log.warning("database %s upgraded: %s", path.name, step)
    return done


def _columns(conn: sqlite3.Connection, name: str) -> dict[str, bool]:
    """Column name -> NOT NULL, as the file has it ({} if no such table)."""
    return {row[1]: bool(row[3]) for row in conn.execute(f'PRAGMA table_info("{name}")')}


def _upgrade_table(conn: sqlite3.Connection, table: Table) -> list[str]:
    have = _columns(conn, table.name)
    if not have:
        return []
    loosened = [c.name for c in table.columns if c.nullable and have.get(c.name)]
    if loosened:
        _rebuild(conn, table, have)
        return [f"{table.name}: rebuilt, {', '.join(loosened)} may now be NULL"]
    added = [c for c in table.columns if c.name not in have]
    for column in added:
        kind = column.type.compile(dialect=DIALECT)
        conn.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
    return [f"{table.name}: added {c.name}" for c in added]


def _add_indexes(conn: sqlite3.Connection, table: Table) -> list[str]:
    """The model's indexes the file's existing table lacks (a new table gets them all)."""
    if not _columns(conn, table.name):
        return []
    have = {row[1] for row in conn.execute(f'PRAGMA index_list("{table.name}")')}
    missing = sorted((i for i in table.indexes if i.name not in have), key=lambda i: i.name)
    for index in missing:
        conn.execute(str(CreateIndex(index).compile(dialect=DIALECT)))
    return [f"{table.name}: made index {index.name}" for index in missing]


def _rebuild(conn: sqlite3.Connection, table: Table, have: dict[str, bool]) -> None:
    old = f"{table.name}__before_upgrade"
    for (index,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table.name,),
    ).fetchall():
        conn.execute(f'DROP INDEX "{index}"')
    conn.execute(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
    conn.execute(str(CreateTable(table).compile(dialect=DIALECT)))
    for index in table.indexes:
        conn.execute(str(CreateIndex(index).compile(dialect=DIALECT)))
    kept = ", ".join(f'"{c.name}"' for c in table.columns if c.name in have)
    # names from our own models and the file's own schema, never from input
    conn.execute(f'INSERT INTO "{table.name}" ({kept}) SELECT {kept} FROM "{old}"')  # noqa: S608  # nosec B608
    conn.execute(f'DROP TABLE "{old}"')
