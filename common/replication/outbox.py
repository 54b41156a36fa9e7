"""The local outbox: updates not yet delivered to a peer, kept in the node's own DB.

A write stages its entry here in the SAME transaction as the change itself
(design §7 rule 1), one row per peer, so a crash between commit and delivery
loses nothing: the row is still there for the background sender.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from common.storage.raw import Raw
from common.webkit import wire

Row = tuple[int, str, dict]  # (seq, target node, entry)


def define_outbox(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("target", String, nullable=False, index=True),
        Column("entry", Text, nullable=False),
        Column("created", Float, nullable=False),
        # AUTOINCREMENT: a seq is never reused, so "delivered, delete later" stays exact.
        sqlite_autoincrement=True,
    )


class Outbox:
    """Typed access to the outbox table."""

    def __init__(self, table: Table):
        self.table = table
        # On sqlite3's cursor: every write stages a row per peer (common.storage.raw).
        self._insert = Raw(insert(table), ["target", "entry", "created"])
        t = table.c  # /health asks this per peer, twice a second from each watcher
        self._pending = select(func.count(), func.min(t.created)).where(
            t.target == bindparam("target"), t.seq > bindparam("after")
        )

    def stage(self, conn: Connection, entry: dict, targets: list[str]) -> list[Row]:
        """Add `entry` for every target inside the caller's transaction."""
        text, now = wire.dumps(entry).decode(), time.time()
        return [
            (
                self._insert.run(conn, {"target": t, "entry": text, "created": now}).lastrowid,
                t,
                entry,
            )
            for t in targets
        ]

    def rows_after(self, conn: Connection, seq: int, limit: int) -> list[Row]:
        """The oldest (seq, target, entry) rows past `seq`, in seq order."""
        query = select(self.table).where(self.table.c.seq > seq).order_by(self.table.c.seq)
        return [(r.seq, r.target, wire.loads(r.entry)) for r in conn.execute(query.limit(limit))]

    def pending(self, conn: Connection, target: str, after: int) -> tuple[int, float | None]:
        """Rows for `target` past `after`: how many, and the oldest one's age in seconds."""
        count, oldest = conn.execute(self._pending, {"target": target, "after": after}).one()
        return count, (time.time() - oldest) if oldest is not None else None

    def remove_upto(self, conn: Connection, marks: dict[str, int]) -> None:
        """Delete each target's rows up to its mark (delivered to someone durable)."""
        for target, seq in marks.items():
            conn.execute(
                delete(self.table).where(self.table.c.target == target, self.table.c.seq <= seq)
            )
