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

import contextlib
import sqlite3
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Float, Integer, and_, case, cast, func, select
from sqlalchemy.engine import Engine

from common import money
from common.http import Unreachable
from common.node import NodeContext
from common.offload import off_loop
from common.replication.replicator import Replicator
from common.storage.raw import Raw
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


# By day, the orders alone: an order's `total` is the exact sum of its lines (a float
# of whole cents, so ROUND(total x 100) is that sum's cents) and `quantity` its copies.
# Reading the period's orders through the index, not 1.8 lines a random lookup each:
# a year of a million orders by day in about a second instead of 4-13 s.
_ORDER_FIGURES = (
    func.count(),
    func.coalesce(func.sum(orders.c.quantity), 0),
    func.coalesce(func.sum(cast(func.round(orders.c.total * 100), Integer)), 0),
)


def revenue(engine: Engine, start: date, end: date, by: str) -> dict:
    """Rows (one per day or per book, sorted) and the period's total.

    The queries run on a read-only connection of their own in a real thread
    (`common.offload`): a year by book reads every line of the year, seconds
    that must not stop the node's loop (pushes, health, buys)."""
    key = _KEYS["day" if by == "day" else "book"]
    if by == "day":
        grouped = _confirmed(start, end, key, *_ORDER_FIGURES).group_by(key).order_by(key)
    else:
        grouped = _lines(start, end, key, *_FIGURES).group_by(key).order_by(key)
    # Every confirmed order has a line (or is one, from before lines), so the
    # period's orders are its confirmed orders: counted without the join.
    counted = _confirmed(start, end, func.count())
    rows, ((counted,),) = off_loop(_read, engine.url.database, [Raw(grouped), Raw(counted)])
    label = "day" if by == "day" else "book_id"
    total = (counted, sum(row[2] for row in rows), sum(row[3] for row in rows))
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "rows": [{label: row[0], **_figures(*row[1:])} for row in rows],
        "total": _figures(*total),
    }


def _read(path: str, queries: list[Raw]) -> list[list[tuple]]:
    """Every query's rows, read in one read transaction of a connection of our own."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        db.execute("BEGIN")
        return [db.execute(query.sql, query.constants).fetchall() for query in queries]


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
