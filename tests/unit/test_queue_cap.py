"""The recovery queue cap (recovery/cap.py) on a plain SQLite file: lengths counted once,
then kept; past the cap the queue is dropped and the target marked until it acknowledges."""

from __future__ import annotations

from sqlalchemy import create_engine, delete, func, insert, select

from recovery import cap
from recovery.models import QueuedEntry
from recovery.models import db as recovery_db

queue = QueuedEntry.__table__


def rows(n: int, target: str = "catalog-2") -> list[dict]:
    return [{"target": target, "entry": "{}"} for _ in range(n)]


def depth(conn, target: str = "catalog-2") -> int:
    query = select(func.count()).select_from(queue).where(queue.c.target == target)
    return conn.execute(query).scalar_one()


def test_a_queue_past_its_cap_is_dropped_and_marked_until_acknowledged(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'recovery.sqlite3'}")
    recovery_db.metadata.create_all(engine)
    with engine.begin() as conn:  # left by an earlier run of the node: counted once
        conn.execute(insert(queue), rows(3) + rows(4, "order-2"))
    lengths = cap.QueueCap(5)
    with engine.begin() as conn:
        assert not lengths.append(conn, "catalog-2", rows(2))  # 5: at the cap, kept
        assert depth(conn) == 5 and not cap.is_overflowed(conn, "catalog-2")
        assert lengths.append(conn, "catalog-2", rows(1))  # 6: dropped
        assert depth(conn) == 0 and cap.is_overflowed(conn, "catalog-2")
        assert depth(conn, "order-2") == 4  # another target's queue is its own
        assert not lengths.append(conn, "catalog-2", rows(2))  # kept: after the snapshot
        assert cap.marks(conn) == {"catalog-2": 6}
        assert cap.acknowledge(conn, "catalog-2")
        assert not cap.is_overflowed(conn, "catalog-2") and depth(conn) == 2
        assert not cap.acknowledge(conn, "catalog-2")  # twice: nothing more to do
        gone = conn.execute(delete(queue).where(queue.c.target == "catalog-2")).rowcount
        lengths.removed("catalog-2", gone)  # acknowledged (POST /queue/<target>/ack)
        assert lengths.length(conn, "catalog-2") == depth(conn) == 0
