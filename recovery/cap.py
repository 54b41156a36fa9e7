"""The cap on each recovery queue (`[retention] queue_cap`, docs/scale.md §5).

Past the cap the target's queue is dropped and the target marked
*overflowed* (persisted): what it missed is then only in its peers' state,
so reading its queue answers `{"entries": [], "overflowed": true}` until
it acknowledges that it takes the snapshot path. Entries appended
meanwhile are kept (they are what comes after the snapshot it will take);
past the cap again, they are dropped again.

Queue lengths are counted here, not by `COUNT(*)` per append (a queue of
100,000 would cost that much on every write): read once per target, then
kept as entries come and go. One process writes the queue (design §1: one
worker per node), under `QueueCap.lock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from recovery.models import Overflow, QueuedEntry

queue = QueuedEntry.__table__
overflowed = Overflow.__table__


class QueueCap:
    """The queue lengths of one recovery node, and its cap."""

    def __init__(self, cap: int):
        self.cap = cap
        self.lock = threading.Lock()  # appends, acknowledgements and drops of every queue
        self._lengths: dict[str, int] = {}

    def length(self, conn: Connection, target: str) -> int:
        if target not in self._lengths:
            query = select(func.count()).select_from(queue).where(queue.c.target == target)
            self._lengths[target] = conn.execute(query).scalar_one()
        return self._lengths[target]

    def append(self, conn: Connection, target: str, rows: list[dict]) -> bool:
        """Append `rows` to `target`'s queue (in `conn`'s transaction, under `lock`); past
        the cap, drop its queue and mark it overflowed. True if it was dropped."""
        now = self.length(conn, target) + len(rows)  # counted before these rows go in
        conn.execute(insert(queue), rows)
        if now <= self.cap:
            self._lengths[target] = now
            return False
        conn.execute(delete(queue).where(queue.c.target == target))
        stmt = sqlite_insert(overflowed).values(
            target=target, at=datetime.now(UTC).isoformat(timespec="seconds"), dropped=now
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[overflowed.c.target],
                set_={"at": stmt.excluded.at, "dropped": overflowed.c.dropped + now},
            )
        )
        self._lengths[target] = 0
        return True

    def removed(self, target: str, count: int) -> None:
        """`count` entries of `target` were acknowledged (under `lock`)."""
        if target in self._lengths:
            self._lengths[target] = max(0, self._lengths[target] - count)

    def forget(self) -> None:
        """Count again from the file (a transaction that changed it was rolled back)."""
        self._lengths.clear()


def is_overflowed(conn: Connection, target: str) -> bool:
    query = select(overflowed.c.target).where(overflowed.c.target == target)
    return conn.execute(query).first() is not None


def acknowledge(conn: Connection, target: str) -> bool:
    """The target takes the snapshot path: its queue may be read again."""
    return bool(conn.execute(delete(overflowed).where(overflowed.c.target == target)).rowcount)


def marks(conn: Connection) -> dict[str, int]:
    """Overflowed targets and how many entries were dropped for each."""
    return dict(conn.execute(select(overflowed.c.target, overflowed.c.dropped)).all())
