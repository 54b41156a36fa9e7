"""Catalog domain: reads, the writer's writes, and applying replicated entries.

A write takes the node's write lock, checks that this node is the writer
(lease holder, takeover done), changes the row, bumps its version and stages
the new row state, stamped with the epoch, in the outbox in ONE transaction.
It is acknowledged only once every other catalog has it or its recovery
queue does, and every copy that missed it has seen its read lease run out
(design §7 rules 1, 2, 7).

Each replica's data descends from one holder's *base* (`data_epoch`): a
replica applies updates of that epoch (newer version wins, decisions are
insert-once), installs a base of a newer epoch whole, and ignores updates
of older epochs, which that base supersedes.
"""

from __future__ import annotations

import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from catalog.models import Book, Meta, OrderDecision, outbox_table
from catalog.role import CatalogRole
from catalog.schemas import CatalogEntrySchema
from common.node import NodeContext
from common.replication.replicator import Replicator
from common.replication.routes import valid_entries
from common.web import ApiError

books = Book.__table__
decisions = OrderDecision.__table__
meta = Meta.__table__


class Behind(Exception):
    """An update from a newer epoch than this replica's base: it needs that base first."""


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
            self.data_epoch = _data_epoch(conn)
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

        return self._write(change, origin)

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

        return self._write(change, origin)

    def resolve(self, order_id: str, book_id: int, quantity: int) -> dict:
        """Was this order decided? If not, fence it as aborted so it never applies (rule 4)."""

        def change(conn: Connection):
            decided = _decision(conn, order_id)
            if decided:
                return _outcome(decided), _again(conn, decided)
            record = _record(order_id, book_id, quantity, "aborted", 0.0)
            conn.execute(insert(decisions).values(**record))
            return _outcome(record), {"order": record}

        return self._write(change)

    def _write(self, change, origin: str | None = None):
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
        return {**result, "epoch": epoch} if "outcome" in result else result

    # -- replication ---------------------------------------------------------
    def receive(self, push: dict) -> dict:
        """A push from the writer: fenced by epoch; maybe replay the queue; apply; lease."""
        epoch = push["epoch"]
        if any(entry.get("epoch", 0) > epoch for entry in push["entries"]):
            raise ApiError(409, "entries: an entry's epoch is newer than the push's", epoch=epoch)
        if self.role.epoch and self.role.epoch >= epoch:
            raise ApiError(409, f"this catalog is the writer of epoch {self.role.epoch}")
        self.role.fence.admit(epoch, "push")
        self.role.saw(epoch)
        if push.get("drain_upto") is not None:
            if not self.replicator.drain_queue(upto=push["drain_upto"], epoch=epoch):
                raise ApiError(503, "recovery queue not reachable", status="behind")
        try:
            self.apply(push["entries"])
        except Behind as e:
            raise ApiError(503, str(e), status="behind", data_epoch=self.data_epoch) from None
        if push.get("until") and self.data_epoch == epoch:
            self.role.read_lease.grant(epoch, push["until"])
        return {"applied": True, "data_epoch": self.data_epoch}

    def apply_queued(self, entries: list) -> None:
        """Entries replayed from the recovery queue: checked first (the queue takes any)."""
        self.apply(valid_entries(CatalogEntrySchema, entries))

    def apply(self, entries: list[dict]) -> None:
        """Apply replicated entries in order (see the module docstring); all or nothing."""
        with self.ctx.write_lock, self.engine.begin() as conn:
            base = _data_epoch(conn)
            for entry in entries:
                epoch = entry.get("epoch", 0)
                if "base" in entry:
                    if epoch > base:
                        _install(conn, entry["base"], epoch)
                        base = epoch
                elif epoch > base:
                    raise Behind(f"update of epoch {epoch} before its base (have {base})")
                elif epoch == base:
                    _apply_one(conn, entry)
        self.data_epoch = base

    def take_over(self, epoch: int) -> bool:
        """A new holder: gather every acknowledged write, make it the base, deliver it."""
        with self.ctx.write_lock:
            self.role.fence.observe(epoch)  # from here on, older pushes are refused
        if not self.replicator.drain_queue(epoch=epoch):
            return False  # the recovery queue may hold acknowledged writes: wait for it
        states = self._peer_states()
        for name in set(self.replicator.peers) - {s["node"] for s in states}:
            self.role.grants.miss(name)  # did not answer: its base goes to its queue at once
        self._merge_newest(states)
        with self.ctx.write_lock:
            with self.engine.begin() as conn:
                _set_data_epoch(conn, epoch)
                base = {"epoch": epoch, "base": _state(conn)}
                staged = self.replicator.stage(conn, base)
            self.data_epoch = epoch
            ticket = self.replicator.enqueue(staged)
        return not self.replicator.wait(ticket, staged)

    def _peer_states(self) -> list[dict]:
        """Every reachable catalog's state, asked all at once (a cut one costs one timeout)."""
        peers = list(self.replicator.peers.values())

        def ask(node):
            state = self.replicator.fetch_state(node, timeout=(0.3, 3.0))
            return state and {**state, "node": node.name}

        with ThreadPoolExecutor(max_workers=max(1, len(peers))) as pool:
            return [state for state in pool.map(ask, peers) if state]

    def _merge_newest(self, states: list[dict]) -> None:
        """Merge the reachable replicas whose data comes from the newest base.

        Each such replica holds a prefix of that base's holder's updates, so
        their union is that holder's longest prefix: it may add writes that
        were never acknowledged, never half of one.
        """
        with self.ctx.write_lock, self.engine.begin() as conn:
            own = _data_epoch(conn)
            newest = max([s.get("data_epoch", 0) for s in states] + [own])
            chosen = [s for s in states if s.get("data_epoch", 0) == newest]
            if newest > own:
                _install(conn, _split(chosen[0]["entries"]), newest)
            for state in chosen:
                for entry in state["entries"]:
                    _apply_one(conn, entry)

    def snapshot(self) -> dict:
        """Everything this replica holds, with the epoch of its base."""
        with self.engine.connect() as conn:
            state = _state(conn)
            epoch = _data_epoch(conn)
        entries = [{"book": b} for b in state["books"]]
        entries += [{"order": d} for d in state["decisions"]]
        return {"data_epoch": epoch, "entries": entries}

    def seed(self, path: Path) -> int:
        """Load the seed catalog into an empty database (every replica seeds alike)."""
        with path.open("rb") as f:
            seed_books = tomllib.load(f)["books"]
        with self.ctx.write_lock, self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(books)).scalar_one():
                return 0
            conn.execute(insert(books), [{**b, "version": 1} for b in seed_books])
        return len(seed_books)


def _data_epoch(conn: Connection) -> int:
    row = conn.execute(select(meta.c.value).where(meta.c.key == "data_epoch")).first()
    return int(row[0]) if row else 0


def _set_data_epoch(conn: Connection, epoch: int) -> None:
    stmt = sqlite_insert(meta).values(key="data_epoch", value=str(epoch))
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": str(epoch)})
    )


def _state(conn: Connection) -> dict:
    return {
        "books": [dict(r) for r in conn.execute(select(books).order_by(books.c.id)).mappings()],
        "decisions": [dict(r) for r in conn.execute(select(decisions)).mappings()],
    }


def _split(entries: list[dict]) -> dict:
    return {
        "books": [e["book"] for e in entries if e.get("book")],
        "decisions": [e["order"] for e in entries if e.get("order")],
    }


def _install(conn: Connection, base: dict, epoch: int) -> None:
    """Replace this replica's data by a holder's base: what it had beyond was never acked."""
    for table in (books, decisions, outbox_table):
        conn.execute(delete(table))
    if base["books"]:
        conn.execute(insert(books), base["books"])
    if base["decisions"]:
        conn.execute(insert(decisions), base["decisions"])
    _set_data_epoch(conn, epoch)


def _apply_one(conn: Connection, entry: dict) -> None:
    if entry.get("book"):
        _apply_book(conn, entry["book"])
    if entry.get("order"):
        conn.execute(sqlite_insert(decisions).values(**entry["order"]).on_conflict_do_nothing())


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


def _apply_book(conn: Connection, row: dict) -> None:
    stmt = sqlite_insert(books).values(**row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[books.c.id],
            set_={c: stmt.excluded[c] for c in ("title", "topic", "cost", "quantity", "version")},
            where=books.c.version < stmt.excluded.version,
        )
    )
