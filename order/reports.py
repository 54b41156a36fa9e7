"""Revenue of confirmed orders by UTC day or by book, exact, and whether it is complete.

A day is the UTC date of the order's `created_at`. The sums are made in SQL
(`GROUP BY`, over the index on `orders(created_at)`), in integer cents:
`unit_price` is decimal text of whole cents (`common.money`), so
ROUND(price × 100) is its exact count of cents and every sum is exact;
Python never sees a line. A replica vouches for a report only when it holds
every order its peers acknowledged: its recovery queue is replayed and no
peer still holds updates for it (`completeness`).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Float, Integer, and_, case, cast, func, select
from sqlalchemy.engine import Engine

from common import money
from common.http import Unreachable
from common.node import NodeContext
from common.replication.replicator import Replicator
from order.models import CONFIRMED
from order.rows import order_items, orders

# An order from before order_items has no lines: it counts as one line of its book,
# priced at its total over its copies.
_LEGACY = order_items.c.order_id.is_(None)
_BOOK = func.coalesce(order_items.c.book_id, orders.c.book_id)
_COPIES = func.coalesce(order_items.c.quantity, orders.c.quantity)
_UNIT_CENTS = case(
    (_LEGACY, func.round(orders.c.total * 100 / orders.c.quantity)),
    else_=func.round(cast(order_items.c.unit_price, Float) * 100),
)
_FIGURES = (
    func.count(orders.c.order_id.distinct()),
    func.coalesce(func.sum(_COPIES), 0),
    func.coalesce(func.sum(cast(_UNIT_CENTS, Integer) * _COPIES), 0),
)
_KEYS = {"day": func.substr(orders.c.created_at, 1, 10), "book": _BOOK}


def revenue(engine: Engine, start: date, end: date, by: str) -> dict:
    """Rows (one per day or per book, sorted) and the period's total."""
    key = _KEYS["day" if by == "day" else "book"]
    grouped = _lines(start, end, key, *_FIGURES).group_by(key).order_by(key)
    with engine.connect() as conn:
        rows = conn.execute(grouped).all()
        # Every confirmed order has a line (or is one, from before lines), so the
        # period's orders are its confirmed orders: counted without the join.
        counted = conn.execute(_confirmed(start, end, func.count())).scalar_one()
    label = "day" if by == "day" else "book_id"
    total = (counted, sum(row[2] for row in rows), sum(row[3] for row in rows))
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "rows": [{label: row[0], **_figures(*row[1:])} for row in rows],
        "total": _figures(*total),
    }


def _figures(orders_counted: int, copies: int, cents: int) -> dict:
    return {
        "orders": orders_counted,
        "copies": copies,
        "revenue": money.text(Decimal(cents).scaleb(-2)),
    }


def _lines(start: date, end: date, *columns):
    """A select of `columns` over every confirmed line in the period."""
    joined = orders.outerjoin(order_items, order_items.c.order_id == orders.c.order_id)
    return _confirmed(start, end, *columns).select_from(joined)


def _confirmed(start: date, end: date, *columns):
    """A select of `columns` over the confirmed orders of the period, found through the
    index on `created_at`. (Nearly every order is confirmed, but SQLite would rather take
    the index on `status` for an equality: `status || ''` is no indexed column, so it
    reads the period's rows only. A day of a year of orders: 10 ms instead of 300.)"""
    return select(*columns).where(
        and_(
            orders.c.status.concat("") == CONFIRMED,
            orders.c.created_at >= start.isoformat(),
            orders.c.created_at < (end + timedelta(days=1)).isoformat(),
        )
    )


def completeness(ctx: NodeContext, replicator: Replicator) -> list[str]:
    """Why this replica might miss acknowledged orders (empty: it holds them all).

    Its recovery queue is replayed first; then each peer is asked whether it
    still holds updates for this replica that nobody durable has.
    """
    notes = []
    if not replicator.drain_queue():
        notes.append("the recovery node did not answer: updates queued for this replica unknown")
    me = ctx.node.name
    for peer in ctx.peers():
        try:
            response = ctx.client.request(peer, "GET", "/health", timeout=(0.5, 2.0))
            waiting = response.json().get("outbox", {}).get(me)  # a 503 body has it too
        except (Unreachable, ValueError, AttributeError):
            waiting = None
        if waiting is None:
            notes.append(f"{peer.name} did not answer: it may hold orders not replicated here")
        elif waiting:
            notes.append(f"{peer.name} still holds {waiting} updates for this replica")
    return notes
