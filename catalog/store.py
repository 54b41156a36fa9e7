"""Catalog domain: reads and the writer's writes (design §7 rules 1, 2, 4, 7).

A write takes the node's write lock, checks that this node is the writer
(lease holder, takeover done), changes the row, bumps its version and stages
the new row state, stamped with the epoch, in the outbox in ONE transaction.
It is acknowledged only once every other catalog has it or its recovery
queue does, and every copy that missed it has seen its read lease run out.
Taking pushes and taking over live in `catalog.replica`.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from catalog.models import Book, OrderDecision
from catalog.replica import data_epoch_of
from catalog.role import CatalogRole
from common.node import NodeContext
from common.observe.metrics import CATALOG_WRITES
from common.replication.replicator import Replicator
from common.web import ApiError

books = Book.__table__
decisions = OrderDecision.__table__


class CatalogStore:
    def __init__(self, ctx: NodeContext, engine: Engine, role: CatalogRole, copies):
        self.ctx = ctx
        self.engine = engine
        self.role = role
        self.copies = copies  # CatalogCopies: the rounds' hooks (leases, front-ends)
        self.replicator: Replicator | None = None
        self.reads = 0  # reads served, for /health (a statistic: no lock needed)
        self.data_epoch = 0

    def load_data_epoch(self) -> int:
        with self.engine.connect() as conn:
            self.data_epoch = data_epoch_of(conn)
        return self.data_epoch

    def serving(self) -> bool:
        return self.role.serves_reads(self.data_epoch)

    def _readable(self) -> None:
        if not self.serving():
            raise ApiError(503, "catalog replica holds no read lease", status="stale")

    # -- reads ---------------------------------------------------------------
    def search(self, topic: str) -> list[dict]:
        self._readable()
        self.reads += 1
        query = select(books.c.id, books.c.title).where(func.lower(books.c.topic) == topic.lower())
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(books.c.id)).mappings()]

    def lookup(self, book_id: int) -> dict:
        self._readable()
        self.reads += 1
        with self.engine.connect() as conn:
            return _book(conn, book_id)

    # -- the writer's writes ------------------------------------------------
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

        return self._write(change, origin, kind="update")

    def buy(self, order_id: str, book_id: int, quantity: int, origin: str | None = None) -> dict:
        """Conditional decrement keyed by order id: decided once, the same answer after."""

        def change(conn: Connection):
            decided = _decision(conn, order_id)
            if decided:
                return _outcome(decided), _again(conn, decided)
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

        return self._write(change, origin, kind="buy")

    def resolve(self, order_id: str, book_id: int, quantity: int) -> dict:
        """Was this order decided? If not, fence it as aborted so it never applies (rule 4)."""

        def change(conn: Connection):
            decided = _decision(conn, order_id)
            if decided:
                return _outcome(decided), _again(conn, decided)
            record = _record(order_id, book_id, quantity, "aborted", 0.0)
            conn.execute(insert(decisions).values(**record))
            return _outcome(record), {"order": record}

        return self._write(change, kind="resolve")

    def _write(self, change, origin: str | None = None, kind: str = "update"):
        with self.ctx.write_lock:
            if not self.role.is_writer():  # checked under the lock a takeover takes
                raise ApiError(421, "not the primary")
            epoch = self.role.epoch
            with self.engine.begin() as conn:
                result, entry = change(conn)
                staged = self.replicator.stage(conn, {**entry, "epoch": epoch})
            if entry.get("book"):
                self.copies.note_change(entry["book"], origin)
            ticket = self.replicator.enqueue(staged)  # rounds see rows in commit order
        # Delivered outside the lock, so concurrent writes share one round (group push).
        missing = self.replicator.wait(ticket, staged)
        if missing:
            raise ApiError(
                503,
                f"not acknowledged: neither {', '.join(missing)} nor its recovery queue took it",
                epoch=epoch,
            )
        self.role.grants.wait_for_behind(time.sleep, self.ctx.cluster.tuning.read_lease)
        CATALOG_WRITES.labels(kind).inc()
        return {**result, "epoch": epoch} if "outcome" in result else result

    def seed(self, path: Path) -> int:
        """Load the seed catalog into an empty database (every replica seeds alike)."""
        with path.open("rb") as f:
            seed_books = tomllib.load(f)["books"]
        with self.ctx.write_lock, self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(books)).scalar_one():
                return 0
            conn.execute(insert(books), [{**b, "version": 1} for b in seed_books])
        return len(seed_books)


def _again(conn: Connection, decided: dict) -> dict:
    """A decision asked for again: pushed again with its book, so it is surely delivered."""
    return {"order": decided, "book": _book(conn, decided["book_id"])}


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
