"""Order rows with their lines: reading, presenting, and merging replicated ones."""

from __future__ import annotations

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from common import money
from common.storage.raw import Raw
from order.models import CONFIRMED, PENDING, Order, OrderItem

orders = Order.__table__
order_items = OrderItem.__table__

# Statements built once, values bound per call: building one per call cost the
# order server about a fifth of its CPU per buy (py-spy --gil: cache keys, compiling).
FIND_ORDER = select(orders).where(orders.c.order_id == bindparam("order_id"))
FIND_LINES = (
    select(order_items.c.book_id, order_items.c.quantity, order_items.c.unit_price)
    .where(order_items.c.order_id == bindparam("order_id"))
    .order_by(order_items.c.book_id)
)


def _merge_order_statement():
    stmt = sqlite_insert(orders)
    new, old = stmt.excluded, orders.c
    decide = (old.status == PENDING) & (new.status != PENDING)
    return stmt.on_conflict_do_update(
        index_elements=[old.order_id],
        set_={
            "status": case((decide, new.status), else_=old.status),
            "total": case((decide, new.total), else_=old.total),
            "created_at": case(
                (decide, new.created_at), else_=func.min(old.created_at, new.created_at)
            ),
        },
        where=decide | (new.created_at < old.created_at),
    )


MERGE_ORDER = _merge_order_statement()
_lines_insert = sqlite_insert(order_items)
MERGE_LINES = _lines_insert.on_conflict_do_update(
    index_elements=[order_items.c.order_id, order_items.c.book_id],
    set_={"unit_price": _lines_insert.excluded.unit_price},
    where=order_items.c.unit_price.is_(None),
)

# The same on sqlite3's cursor: what every buy runs, here and at the peer (common.storage.raw).
ORDER_COLUMNS = ["order_id", "book_id", "quantity", "total", "status", "created_at"]
RAW_MERGE_ORDER = Raw(MERGE_ORDER, ORDER_COLUMNS)
LINE = {"unit_price": None}  # a line's columns that may be left out
RAW_MERGE_LINES = Raw(MERGE_LINES, ["order_id", "book_id", "quantity", "unit_price"])


def find(conn: Connection, order_id: str) -> dict | None:
    """An order with its `items` (lines in book order), or None."""
    row = conn.execute(FIND_ORDER, {"order_id": order_id}).mappings().first()
    if row is None:
        return None
    return {**row, "items": lines(conn, order_id, row)}


def find_all(conn: Connection, where) -> list[dict]:
    """Every order matching `where`, with its `items`, in two queries (not one per order)."""
    found = [dict(r) for r in conn.execute(select(orders).where(where)).mappings()]
    query = (
        select(order_items)
        .join(orders, orders.c.order_id == order_items.c.order_id)
        .where(where)
        .order_by(order_items.c.order_id, order_items.c.book_id)
    )
    by_order: dict[str, list[dict]] = {}
    for line in conn.execute(query).mappings():
        by_order.setdefault(line["order_id"], []).append(
            {k: line[k] for k in ("book_id", "quantity", "unit_price")}
        )
    return [
        {**order, "items": by_order.get(order["order_id"]) or _legacy(order)} for order in found
    ]


def lines(conn: Connection, order_id: str, order) -> list[dict]:
    found = conn.execute(FIND_LINES, {"order_id": order_id}).mappings()
    return [dict(r) for r in found] or _legacy(order)


def _legacy(order) -> list[dict]:
    """An order from before order_items: its one line, priced by its total."""
    if order["book_id"] is None:
        return []
    unit = money.exact(order["total"]) / order["quantity"] if order["total"] else None
    price = money.text(unit) if unit is not None else None
    return [{"book_id": order["book_id"], "quantity": order["quantity"], "unit_price": price}]


def same_lines(order: dict, wanted: list[dict]) -> bool:
    """Whether an existing order is for exactly these books and quantities."""

    def key(items):
        return sorted((line["book_id"], line["quantity"]) for line in items)

    return key(order["items"]) == key(wanted)


def present(order: dict) -> dict:
    """An order as clients see it: lines, exact total (confirmed ones only), status."""
    confirmed = order["status"] == CONFIRMED
    return {
        "order_id": order["order_id"],
        "book_id": order["book_id"],
        "quantity": order["quantity"],
        "status": order["status"],
        "created_at": order["created_at"],
        "items": order["items"],
        "total": money.text(money.total(order["items"]) if confirmed else 0),
    }


def merge_order(conn: Connection, row: dict) -> None:
    """Insert by order id; a decided row replaces only a pending one (see OrderStore.apply)."""
    RAW_MERGE_ORDER.run(conn, {column: row.get(column) for column in ORDER_COLUMNS})


def merge_lines(conn: Connection, order_id: str, items: list[dict]) -> None:
    """Insert an order's lines; a priced line fills in one still unpriced (pending)."""
    RAW_MERGE_LINES.many(conn, ({**LINE, "order_id": order_id, **line} for line in items))
