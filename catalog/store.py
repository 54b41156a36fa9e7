"""Catalog domain: reads, primary writes, and applying replicated entries.

A write takes the node's write lock, changes the row, bumps its version and
stages the new row state in the outbox in ONE transaction, then delivers it
to the backups before returning (design §7 rules 1-2). Replicated entries
are applied only when newer (by version), so replay is idempotent and
order-insensitive.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from catalog.models import Book, OrderDecision, outbox_table
from common.node import NodeContext
from common.replication.replicator import Replicator
from common.web import ApiError

books = Book.__table__
decisions = OrderDecision.__table__


class CatalogStore:
    def __init__(
        self,
        ctx: NodeContext,
        engine: Engine,
        replicator: Replicator,
        invalidate: Callable[..., None],
    ):
        self.ctx = ctx
        self.engine = engine
        self.replicator = replicator
        self.invalidate = invalidate
        self.may_write: Callable[[], bool] = lambda: True  # the election's is_primary
        self.reads = 0  # reads served, for /health (a statistic: no lock needed)

    # -- reads ---------------------------------------------------------------
    def search(self, topic: str) -> list[dict]:
        self.reads += 1
        query = select(books.c.id, books.c.title).where(func.lower(books.c.topic) == topic.lower())
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(books.c.id)).mappings()]

    def lookup(self, book_id: int) -> dict:
        self.reads += 1
        with self.engine.connect() as conn:
            return _book(conn, book_id)

    # -- primary writes -----------------------------------------------------
    def update(
        self, book_id: int, price: float | None, quantity: int | None, origin: str | None = None
    ) -> dict:
        def change(conn: Connection):
            _book(conn, book_id)
            values = {"version": books.c.version + 1}
            if price is not None:
                values["cost"] = price
            if quantity is not None:
                values["quantity"] = quantity
            conn.execute(update(books).where(books.c.id == book_id).values(**values))
            row = _book(conn, book_id)
            return row, {"book": row}

        return self._write(change, book_id, origin)

    def buy(self, order_id: str, book_id: int, quantity: int, origin: str | None = None) -> dict:
        """Conditional decrement keyed by order id: decided once, the same answer after."""

        def change(conn: Connection):
            decided = _decision(conn, order_id)
            if decided:
                return _outcome(decided), None
            book = _book(conn, book_id)
            taken = conn.execute(
                update(books)
                .where(books.c.id == book_id, books.c.quantity >= quantity)
                .values(quantity=books.c.quantity - quantity, version=books.c.version + 1)
            ).rowcount
            status = "applied" if taken else "rejected"
            record = _record(order_id, book_id, quantity, status, book["cost"] * quantity)
            conn.execute(insert(decisions).values(**record))
            entry = {"order": record, **({"book": _book(conn, book_id)} if taken else {})}
            return _outcome(record), entry

        return self._write(change, book_id, origin)

    def resolve(self, order_id: str, book_id: int, quantity: int) -> dict:
        """Was this order decided? If not, fence it as aborted so it never applies (rule 4)."""

        def change(conn: Connection):
            decided = _decision(conn, order_id)
            if decided:
                return _outcome(decided), None
            record = _record(order_id, book_id, quantity, "aborted", 0.0)
            conn.execute(insert(decisions).values(**record))
            return _outcome(record), {"order": record}

        return self._write(change, None)

    def _write(self, change, book_id: int | None, origin: str | None = None):
        with self.ctx.write_lock, self.engine.begin() as conn:
            if not self.may_write():  # checked under the lock an announcement takes
                raise ApiError(421, "not the primary")
            result, entry = change(conn)
            staged = self.replicator.stage(conn, entry) if entry else []
        # Pushed outside the lock, so concurrent writes share one push (group push).
        self.replicator.deliver(staged)
        if entry and entry.get("book"):
            self.invalidate(book_id, skip=origin)
        return result

    # -- replication ---------------------------------------------------------
    def apply(self, entries: list[dict]) -> None:
        """Apply replicated entries: newer book versions win; order ids are insert-once."""
        with self.ctx.write_lock, self.engine.begin() as conn:
            for entry in entries:
                if entry.get("book"):
                    _apply_book(conn, entry["book"])
                if entry.get("order"):
                    conn.execute(
                        sqlite_insert(decisions).values(**entry["order"]).on_conflict_do_nothing()
                    )

    def install(self, entries: list[dict]) -> None:
        """Replace this replica's state by the primary's snapshot (a rejoining replica).

        Whatever this replica wrote that the primary never got was never
        acknowledged (writes are pushed before the answer), so it is dropped,
        with the outbox that would have spread it.
        """
        with self.ctx.write_lock, self.engine.begin() as conn:
            for table in (books, decisions, outbox_table):
                conn.execute(delete(table))
            book_rows = [e["book"] for e in entries if e.get("book")]
            order_rows = [e["order"] for e in entries if e.get("order")]
            if book_rows:
                conn.execute(insert(books), book_rows)
            if order_rows:
                conn.execute(insert(decisions), order_rows)

    def state(self) -> list[dict]:
        """Everything this replica holds, as entries a peer can apply."""
        with self.engine.connect() as conn:
            rows = [{"book": dict(r)} for r in conn.execute(select(books)).mappings()]
            rows += [{"order": dict(r)} for r in conn.execute(select(decisions)).mappings()]
        return rows

    def seed(self, path: Path) -> int:
        """Load the seed catalog into an empty database (every replica seeds alike)."""
        with path.open("rb") as f:
            seed_books = tomllib.load(f)["books"]
        with self.ctx.write_lock, self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(books)).scalar_one():
                return 0
            conn.execute(insert(books), [{**b, "version": 1} for b in seed_books])
        return len(seed_books)


def _book(conn: Connection, book_id: int) -> dict:
    row = conn.execute(select(books).where(books.c.id == book_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"no book with id {book_id}")
    return dict(row)


def _decision(conn: Connection, order_id: str) -> dict | None:
    query = select(decisions).where(decisions.c.order_id == order_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def _record(order_id: str, book_id: int, quantity: int, status: str, total: float) -> dict:
    return {
        "order_id": order_id,
        "book_id": book_id,
        "quantity": quantity,
        "status": status,
        "total": total if status == "applied" else 0.0,
    }


def _outcome(record: dict) -> dict:
    return {
        "outcome": record["status"],
        "total": record["total"],
        "book_id": record["book_id"],
        "quantity": record["quantity"],
    }


def _apply_book(conn: Connection, row: dict) -> None:
    stmt = sqlite_insert(books).values(**row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[books.c.id],
            set_={c: stmt.excluded[c] for c in ("title", "topic", "cost", "quantity", "version")},
            where=books.c.version < stmt.excluded.version,
        )
    )
