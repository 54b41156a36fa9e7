"""The order ledger as the replicas' SQLite files hold it, and its invariants.

Read after heal, from every replica's file: order replicas' `orders` and
`order_items`, catalogs' `books` and `order_decisions`. The invariants
(design §5 and §7, issue 12): stock fell by exactly the quantities of the
confirmed orders' lines, per book; money is exact (every confirmed line
priced in whole cents, `orders.total` its float copy, the revenue the same
Decimal on every replica); no order half-applied (a confirmed order has
lines and an 'applied' catalog decision with the very same lines, and no
decision applied without its confirmed order); replicas identical.

Each check returns violations as plain strings, as `faults.check` reports them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from tests.support.cluster import LocalCluster

PRICE = re.compile(r"^\d+\.\d{2}$")
CENT = Decimal("0.01")
SHOWN = 10  # violations of one kind shown before "... and N more"

Line = tuple[int, int, str | None]  # (book_id, quantity, unit_price)


@dataclass
class OrderReplica:
    """One order replica's file: rows by order id, each order's lines sorted by book."""

    name: str
    orders: dict[str, tuple] = field(default_factory=dict)  # id -> (book_id, qty, total, status)
    lines: dict[str, list[Line]] = field(default_factory=dict)
    raw_orders: list[tuple] = field(default_factory=list)
    raw_lines: list[tuple] = field(default_factory=list)

    def confirmed(self) -> list[str]:
        return [o for o, row in self.orders.items() if row[3] == "confirmed"]


@dataclass
class Decision:
    status: str  # applied | rejected | aborted
    total: float
    lines: list[Line]


def read_orders(cluster: LocalCluster, name: str) -> OrderReplica:
    replica = OrderReplica(name)
    replica.raw_orders = cluster.rows(
        name,
        "SELECT order_id, book_id, quantity, total, status, created_at FROM orders "
        "ORDER BY order_id",
    )
    replica.raw_lines = cluster.rows(
        name,
        "SELECT order_id, book_id, quantity, unit_price FROM order_items "
        "ORDER BY order_id, book_id",
    )
    replica.orders = {r[0]: r[1:5] for r in replica.raw_orders}
    for order_id, book_id, quantity, unit_price in replica.raw_lines:
        replica.lines.setdefault(order_id, []).append((book_id, quantity, unit_price))
    return replica


def read_decisions(cluster: LocalCluster, name: str) -> dict[str, Decision]:
    rows = cluster.rows(
        name, "SELECT order_id, book_id, quantity, status, total, items FROM order_decisions"
    )
    return {r[0]: Decision(r[3], r[4], _decision_lines(*r[1:3], r[4], r[5])) for r in rows}


def read_stock(cluster: LocalCluster, name: str) -> dict[int, int]:
    return {r[0]: r[1] for r in cluster.rows(name, "SELECT id, quantity FROM books")}


def _decision_lines(book_id, quantity, total, items) -> list[Line]:
    if items:
        parsed = json.loads(items)
        return sorted((x["book_id"], x["quantity"], x.get("unit_price")) for x in parsed)
    # a decision from before multi-book orders: one line priced by its total
    unit = (Decimal(repr(total)) / quantity).quantize(CENT) if total else Decimal("0.00")
    return [(book_id, quantity, str(unit))]


# -- arithmetic ------------------------------------------------------------------
def price(text: str | None) -> Decimal | None:
    """A stored unit price as an exact decimal; None if absent or not whole cents."""
    if text is None or not PRICE.match(str(text)):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def amount(lines: list[Line]) -> Decimal:
    """Σ quantity × unit_price, exactly (an unpriced line counts 0; other checks flag it)."""
    return sum((q * (price(p) or Decimal(0)) for _, q, p in lines), Decimal("0.00"))


def cents(value: float) -> Decimal:
    """A float copy of an amount, back to the cent it stands for."""
    return Decimal(repr(value)).quantize(CENT)


def sold(replica: OrderReplica) -> Counter:
    """Copies per book over the confirmed orders' lines (single buys and multi orders)."""
    counts: Counter = Counter()
    for order_id in replica.confirmed():
        for book_id, quantity, _ in replica.lines.get(order_id, []):
            counts[book_id] += quantity
    return counts


def applied(decisions: dict[str, Decision]) -> Counter:
    """Copies per book over the catalog's applied decisions."""
    counts: Counter = Counter()
    for decision in decisions.values():
        if decision.status == "applied":
            for book_id, quantity, _ in decision.lines:
                counts[book_id] += quantity
    return counts


def revenue(replica: OrderReplica) -> Decimal:
    return sum((amount(replica.lines.get(o, [])) for o in replica.confirmed()), Decimal("0.00"))


# -- invariants ------------------------------------------------------------------
def capped(problems: list[str], shown: int = SHOWN) -> list[str]:
    if len(problems) <= shown:
        return problems
    return problems[:shown] + [f"... and {len(problems) - shown} more like the above"]


def same_everywhere(what: str, states: dict[str, object]) -> list[str]:
    """One violation per replica whose `what` differs from the first replica's."""
    (first_name, first), *rest = states.items()
    problems = []
    for name, state in rest:
        if state != first:
            detail = ""
            if isinstance(state, list) and isinstance(first, list):
                detail = (
                    f" ({len(state)} vs {len(first)} rows, {len(set(state) ^ set(first))} differ)"
                )
            problems.append(f"{what} differ: {name} vs {first_name}{detail}")
    return problems


def stock_fell_by_sales(initial: dict[int, int], stock: dict[int, int], sales: Counter, where: str):
    """Per book: initial stock − current stock = copies sold (by `where`'s account)."""
    problems = [f"{where}: book {b} stock {q} < 0" for b, q in stock.items() if q < 0]
    for book_id, before in sorted(initial.items()):
        fell = before - stock.get(book_id, before)
        if fell != sales.get(book_id, 0):
            problems.append(
                f"{where}: book {book_id} stock fell {fell}, "
                f"confirmed lines sum to {sales.get(book_id, 0)}"
            )
    problems += [f"{where}: sales of unknown book {b}" for b in sales if b not in initial]
    return problems


def whole_orders(replica: OrderReplica) -> list[str]:
    """No order half-applied, every amount exact, every row decided (after heal)."""
    problems = []
    for order_id, (book_id, quantity, total, status) in sorted(replica.orders.items()):
        lines = replica.lines.get(order_id, [])
        where = f"{replica.name}: order {order_id} ({status})"
        if status not in ("confirmed", "rejected"):
            problems.append(f"{where} still {status} after heal")
            continue
        if not lines:
            problems.append(f"{where} has no order_items line")
            continue
        if quantity != sum(q for _, q, _ in lines):
            problems.append(f"{where}: quantity {quantity} but its lines hold {lines}")
        expected_book = lines[0][0] if len(lines) == 1 else None
        if book_id != expected_book:
            problems.append(f"{where}: book_id {book_id} for lines {lines}")
        if any(q <= 0 for _, q, _ in lines):
            problems.append(f"{where}: a line without copies {lines}")
        if status == "rejected":
            if total != 0:
                problems.append(f"{where}: rejected but total {total}")
            continue
        unpriced = [line for line in lines if price(line[2]) is None]
        if unpriced:
            problems.append(f"{where}: lines not priced in whole cents {unpriced}")
        elif cents(total) != amount(lines):
            problems.append(f"{where}: total {total} but Σ quantity × unit_price = {amount(lines)}")
    problems += [
        f"{replica.name}: order_items of {o} without an order row"
        for o in sorted(set(replica.lines) - set(replica.orders))
    ]
    return problems


def prices_known(replica: OrderReplica, known: dict[int, set[Decimal]]) -> list[str]:
    """Every confirmed line is priced at a cost its book had (at the start, or a staff write)."""
    problems = []
    for order_id in replica.confirmed():
        for book_id, _, unit_price in replica.lines.get(order_id, []):
            if book_id in known and price(unit_price) not in known[book_id]:
                problems.append(
                    f"{replica.name}: order {order_id} priced book {book_id} at {unit_price}, "
                    f"a cost it never had"
                )
    return problems


def decisions_match(replica: OrderReplica, catalog: str, decisions: dict[str, Decision]):
    """Confirmed order ↔ 'applied' decision with the same lines; every decision has its order."""
    problems = []
    where = f"{replica.name} vs {catalog}"
    for order_id, (_, _, _, status) in sorted(replica.orders.items()):
        decision = decisions.get(order_id)
        if decision is None:
            problems.append(f"{where}: {status} order {order_id} has no catalog decision")
        elif (status == "confirmed") != (decision.status == "applied"):
            problems.append(f"{where}: order {order_id} {status}, decision {decision.status}")
        elif status == "confirmed" and decision.lines != replica.lines.get(order_id):
            problems.append(
                f"{where}: order {order_id} lines {replica.lines.get(order_id)} "
                f"but decision lines {decision.lines}"
            )
        elif decision.status == "applied" and cents(decision.total) != amount(decision.lines):
            problems.append(
                f"{where}: decision {order_id} total {decision.total}, "
                f"lines make {amount(decision.lines)}"
            )
    for order_id in sorted(set(decisions) - set(replica.orders)):
        problems.append(
            f"{where}: {decisions[order_id].status} decision {order_id} without an order"
        )
    return problems


def check(
    cluster: LocalCluster,
    initial: dict[int, int],
    known_prices: dict[int, set[Decimal]] | None = None,
) -> tuple[list[str], dict[str, OrderReplica]]:
    """Every replica-side invariant of the order ledger; (violations, the order replicas)."""
    catalogs, order_nodes = cluster.names("catalog"), cluster.names("order")
    replicas = {n: read_orders(cluster, n) for n in order_nodes}
    decisions = {n: read_decisions(cluster, n) for n in catalogs}
    stocks = {n: read_stock(cluster, n) for n in catalogs}
    problems = []
    problems += same_everywhere("orders", {n: r.raw_orders for n, r in replicas.items()})
    problems += same_everywhere("order_items", {n: r.raw_lines for n, r in replicas.items()})
    problems += same_everywhere("revenues", {n: revenue(r) for n, r in replicas.items()})
    problems += same_everywhere("stock", stocks)
    for name, replica in replicas.items():
        problems += capped(whole_orders(replica))
        problems += capped(prices_known(replica, known_prices or {}))
        for catalog in catalogs:
            problems += capped(
                stock_fell_by_sales(initial, stocks[catalog], sold(replica), f"{catalog}/{name}")
            )
            problems += capped(decisions_match(replica, catalog, decisions[catalog]))
    for catalog in catalogs:
        problems += capped(
            stock_fell_by_sales(initial, stocks[catalog], applied(decisions[catalog]), catalog)
        )
    return problems, replicas
