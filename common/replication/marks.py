"""How far this node has read each peer's changes (paged GET /sync), and this file's own
incarnation, in the `meta(key, value)` table (docs/scale.md §6).

A peer numbers its rows by a change sequence of its own file. Its incarnation,
a random id made with the file and made anew when `bazar restore` put an
older file in place, says whether a sequence number we kept still means
what it meant: if the incarnation changed, we read that peer from the start.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import Connection

from common.storage import restored

INCARNATION = "incarnation"
READ = text("SELECT value FROM meta WHERE key = :k")
WRITE = text("INSERT OR REPLACE INTO meta (key, value) VALUES (:k, :v)")


def install(conn: Connection, renew: bool = False) -> str:
    """At start: the `meta` table, and this file's incarnation (made anew with `renew`)."""
    conn.exec_driver_sql(restored.CREATE)
    return incarnation(conn, renew)


def incarnation(conn: Connection, renew: bool = False) -> str:
    """This file's incarnation, made on first use (or anew with `renew`)."""
    row = conn.execute(READ, {"k": INCARNATION}).first()
    if row and not renew:
        return row[0]
    made = uuid.uuid4().hex
    conn.execute(WRITE, {"k": INCARNATION, "v": made})
    return made


def read(conn: Connection, peer: str) -> tuple[str, int] | None:
    """(the peer's incarnation, the last seq of it we applied), or None: from the start."""
    row = conn.execute(READ, {"k": f"synced:{peer}"}).first()
    if row is None:
        return None
    made, _, seq = row[0].rpartition(":")
    return (made, int(seq)) if made and seq.isdigit() else None


def write(conn: Connection, peer: str, made: str, seq: int) -> None:
    conn.execute(WRITE, {"k": f"synced:{peer}", "v": f"{made}:{seq}"})
