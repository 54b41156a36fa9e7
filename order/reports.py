"""Revenue of confirmed orders by UTC day or by book, exact, and whether it is complete.

A day is the UTC date of the order's `created_at`. Sums are decimals over
`order_items` (Σ quantity × unit_price). A replica vouches for a report only
when it holds every order its peers acknowledged: its recovery queue is
replayed and no peer still holds updates for it (`completeness`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from common import money
from common.http import Unreachable
from common.node import NodeContext
from common.replication.replicator import Replicator
from order.models import CONFIRMED
from order.rows import order_items, orders

ZERO = Decimal("0.00")


def revenue(engine: Engine, start: date, end: date, by: str) -> dict:
    """Rows (one per day or per book, sorted) and the period's total."""
    groups: dict = defaultdict(lambda: {"orders": set(), "copies": 0, "revenue": ZERO})
    everything = {"orders": set(), "copies": 0, "revenue": ZERO}
    for order_id, day, book_id, quantity, unit_price in _lines(engine, start, end):
        key = day if by == "day" else book_id
        amount = money.line_total(quantity, unit_price)
        for bucket in (groups[key], everything):
            bucket["orders"].add(order_id)
            bucket["copies"] += quantity
            bucket["revenue"] += amount
    label = "day" if by == "day" else "book_id"
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "rows": [{label: key, **_figures(groups[key])} for key in sorted(groups)],
        "total": _figures(everything),
    }


def _figures(bucket: dict) -> dict:
    return {
        "orders": len(bucket["orders"]),
        "copies": bucket["copies"],
        "revenue": money.text(bucket["revenue"]),
    }


def _lines(engine: Engine, start: date, end: date):
    """(order id, day, book id, quantity, unit price) of every confirmed line in the period."""
    query = (
        select(
            orders.c.order_id,
            orders.c.created_at,
            orders.c.book_id,
            orders.c.quantity,
            orders.c.total,
            order_items.c.book_id,
            order_items.c.quantity,
            order_items.c.unit_price,
        )
        .select_from(orders.outerjoin(order_items, order_items.c.order_id == orders.c.order_id))
        .where(
            orders.c.status == CONFIRMED,
            orders.c.created_at >= start.isoformat(),
            orders.c.created_at < (end + timedelta(days=1)).isoformat(),
        )
    )
    with engine.connect() as conn:
        for order_id, created, book, copies, total, line_book, quantity, price in conn.execute(
            query
        ):
            if line_book is None:  # an order from before order_items: one line, its total
                yield order_id, created[:10], book, copies, money.exact(total) / copies
            else:
                yield order_id, created[:10], line_book, quantity, price


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
