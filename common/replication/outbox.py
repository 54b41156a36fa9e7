"""The local outbox: updates not yet delivered to a peer, kept in the node's own DB.

A write stages its entry here in the SAME transaction as the change itself
(design §7 rule 1), one row per peer, so a crash between commit and delivery
loses nothing: the row is still there for the background sender.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection

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

    def stage(self, conn: Connection, entry: dict, targets: list[str]) -> list[Row]:
        """Add `entry` for every target inside the caller's transaction."""
        text, now = json.dumps(entry), time.time()
        return [
            (
                conn.execute(
                    insert(self.table).values(target=t, entry=text, created=now)
                ).inserted_primary_key[0],
                t,
                entry,
            )
            for t in targets
        ]

    def rows(self, conn: Connection, older_than: float = 0.0, limit: int = 500) -> list[Row]:
        """The oldest (seq, target, entry) rows staged at least `older_than` seconds ago."""
        query = (
            select(self.table)
            .where(self.table.c.created <= time.time() - older_than)
            .order_by(self.table.c.seq)
            .limit(limit)
        )
        return [(r.seq, r.target, json.loads(r.entry)) for r in conn.execute(query)]

    def remove(self, conn: Connection, seqs: list[int]) -> None:
        if seqs:
            conn.execute(delete(self.table).where(self.table.c.seq.in_(seqs)))
