"""Peers read an order server's decided orders in pages, by its change sequence.

Every write of an `orders` row gives it the next number of this file's own
sequence (triggers: whatever path writes the row). A peer catching up asks
for the decided orders numbered after the last it applied (`GET
/sync?after=&limit=`), so rejoining costs what changed, not what is stored
(docs/scale.md §6). Pending orders stay local: they are not replicated.
"""

from __future__ import annotations

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.engine import Connection, Engine

from common.replication import marks
from common.storage import restored
from common.web import QueryInt
from order import rows
from order.models import PENDING
from order.rows import orders

PAGE_AFTER = QueryInt("after", default=0, low=0, high=2**62)
PAGE_LIMIT = QueryInt("limit", default=None, low=1, high=5000)
QUERY = {
    "after": {**PAGE_AFTER.schema, "description": "orders changed after this seq"},
    "limit": {**PAGE_LIMIT.schema, "description": "a page of at most this many (none: all)"},
}
_NUMBER = (
    " ON orders BEGIN UPDATE orders SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM orders)"
    " WHERE order_id = NEW.order_id; END"
)
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS orders_seq_on_insert AFTER INSERT" + _NUMBER,
    "CREATE TRIGGER IF NOT EXISTS orders_seq_on_update AFTER UPDATE OF status, total, created_at"
    + _NUMBER,
)


def install(engine: Engine) -> None:
    """The triggers; numbers for rows a version without them wrote; this file's
    incarnation (made anew while the file is marked restored from a backup)."""
    with engine.begin() as conn:
        for ddl in TRIGGERS:
            conn.exec_driver_sql(ddl)
        top = conn.execute(select(func.coalesce(func.max(orders.c.seq), 0))).scalar_one()
        unnumbered = update(orders).where(orders.c.seq.is_(None))
        conn.execute(unnumbered.values(seq=literal_column("rowid") + top))
        marks.install(conn, renew=restored.restored_at(conn) is not None)


def page(conn: Connection, after: int, limit: int) -> dict:
    """The decided orders numbered after `after`, at most `limit`, in sequence order."""
    query = (
        select(orders.c.order_id, orders.c.seq)
        .where(orders.c.seq > after, orders.c.status != PENDING)
        .order_by(orders.c.seq)
        .limit(limit)
    )
    found = conn.execute(query).all()
    decided = rows.find_all(conn, orders.c.order_id.in_([order_id for order_id, _ in found]))
    return {
        "incarnation": marks.incarnation(conn),
        "entries": [entry(order) for order in decided],
        "after": found[-1][1] if found else after,
        "more": len(found) == limit,
    }


def entry(order: dict) -> dict:
    """An order as replicas exchange it: its row (not this file's seq) and its lines."""
    row = {k: v for k, v in order.items() if k not in ("items", "short", "seq")}
    return {"order": row, "items": order["items"]}
