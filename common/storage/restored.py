"""The mark `bazar restore` leaves in a database it put in place (docs/backup.md).

A restored file is older than what its node held: updates that reached the
node directly after the backup was taken are in no recovery queue, so the
node cannot catch up from its queue alone. The mark says so until the node
has caught up from its peers (an order server) or installed the writer's
base or snapshot (a catalog); whoever clears it does so in the transaction
that made the node whole. It lives in a `meta(key, value)` table, the
catalog's own (`catalog.models.Meta`) or one made for it.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import text
from sqlalchemy.engine import Connection

KEY = "restored"
CREATE = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL)"
)
_HAS_META = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")


def mark(conn: sqlite3.Connection, when: str) -> None:
    """Mark a database as restored from a backup made at `when` (in the caller's
    transaction)."""
    conn.execute(CREATE)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (KEY, when))


def restored_at(conn: Connection) -> str | None:
    """When the backup this database was restored from was made; None if it is not marked."""
    if conn.execute(_HAS_META).first() is None:
        return None
    row = conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": KEY}).first()
    return row[0] if row else None


def clear(conn: Connection) -> None:
    """The node is whole again (call in the transaction that made it so)."""
    if conn.execute(_HAS_META).first() is not None:
        conn.execute(text("DELETE FROM meta WHERE key = :k"), {"k": KEY})


def mark_lacking(conn: Connection, why: str) -> None:
    """The same mark on a node's own database, in `conn`'s transaction: it lacks updates
    no queue keeps (its recovery queue was dropped past its cap, docs/scale.md §5), so it
    takes the same way out as a restored file."""
    conn.execute(text(CREATE))
    conn.execute(
        text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)"), {"k": KEY, "v": why}
    )
