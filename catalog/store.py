"""Catalog domain: reads and the writer's writes (design §7 rules 1, 2, 4, 7).

A write takes the node's write lock, checks that this node is the writer
(lease holder, takeover done), changes the row, bumps its version and stages
the new row state, stamped with the epoch, in the outbox in ONE transaction.
It is acknowledged only once every other catalog has it or its recovery
queue does, and every copy that missed it has seen its read lease run out.
Taking pushes and taking over live in `catalog.replica`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import tomllib
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from catalog import accounts, audit, decisions, imports, search
from catalog.doubt import LISTING, Doubts, Write, keys_of
from catalog.models import BookKey
from catalog.replica import data_epoch_of, set_data_epoch
from catalog.retention import ClusterAge
from catalog.role import CatalogRole
from catalog.rows import (
    STAMP,
    any_book,
    books,
    listed_book,
    listed_books,
    next_position,
    now_text,
    stamp,
)
from common.node import NodeContext
from common.observe.metrics import CATALOG_WRITES
from common.pages import cut, page
from common.replication.replicator import Replicator
from common.storage import restored
from common.web import ApiError

book_keys = BookKey.__table__
EDITABLE = ("title", "topic", "cost", "quantity")


class CatalogStore:
    def __init__(self, ctx: NodeContext, engine: Engine, role: CatalogRole, copies):
        self.ctx = ctx
        self.engine = engine
        self.role = role
        self.copies = copies  # CatalogCopies: the rounds' hooks (leases, front-ends)
        self.replicator: Replicator | None = None
        self.reads = 0  # reads served, for /health (a statistic: no lock needed)
        self.data_epoch = 0
        self.restored: str | None = None  # restored from a backup, no writer's base since
        self.position = 0  # of this holder's last commit (`rows.stamp`; set at takeover)
        self.age = ClusterAge()  # the cluster age while we write (`catalog.retention`)
        self.acking = 0  # writes committed here and not yet answered (`hand_off` waits)
        self._acking_lock = threading.Lock()
        # What this writer committed and has not acknowledged: no read returns it.
        self.doubts = Doubts(self._landed, patience=ctx.cluster.tuning.read_lease / 2)

    def load_data_epoch(self) -> int:
        """The data epoch at start. A file `bazar restore` put in place lacks writes this
        catalog applied after the backup, which no queue holds: it counts as no base at
        all (epoch 0), so the writer's first push or lease heals it from a snapshot
        (`catalog.heal`), which clears the mark. Until then it serves no read and does
        not stand for the lease (docs/backup.md)."""
        with self.ctx.write_lock, self.engine.begin() as conn:
            self.restored = restored.restored_at(conn)
            if self.restored:
                set_data_epoch(conn, 0)
            self.data_epoch = data_epoch_of(conn)
        return self.data_epoch

    def serving(self) -> bool:
        return self.role.serves_reads(self.data_epoch)

    def _readable(self) -> tuple:
        if not self.serving():
            raise ApiError(503, "catalog replica holds no read lease", status="stale")
        return self.role.read_mark()

    def _answer(self, mark: tuple, result):
        """`result`, if the lease the read began under still holds now it is given."""
        if not self.role.still_serves(self.data_epoch, mark):
            raise ApiError(503, "the read lease ran out during the read", status="stale")
        return result

    # -- reads ---------------------------------------------------------------
    def search(self, topic: str, limit: int, after: list | None) -> dict:
        """A page of the listed books under a topic, by id (`catalog.search`)."""
        self.reads += 1
        query = lambda conn: search.topic_page(conn, topic, limit, after)  # noqa: E731
        return page(*self._read(query, keys=(LISTING,)))

    def search_words(self, q: str, limit: int, after: list | None) -> dict:
        """A page of word search, best first (`catalog.search`), under the read lease."""
        self.reads += 1

        def found():
            mark = self._readable()
            return self._answer(mark, search.words_page(self.engine.url.database, q, limit, after))

        return page(*self.doubts.settled(found, (LISTING,), self._position))

    def lookup(self, book_id: int) -> dict:
        self.reads += 1

        def book():
            mark = self._readable()
            try:
                with self.engine.connect() as conn:
                    return self._answer(mark, listed_book(conn, book_id))
            except ApiError as e:
                if e.status != 404:
                    raise
                return self._answer(mark, e)  # a 404 is an answer too

        found = self.doubts.settled(book, (book_id,), self._position)
        if isinstance(found, ApiError):
            raise found
        return found

    def lookup_many(self, ids: list[int]) -> tuple[list[dict], list[int]]:
        """The listed books among `ids` and the ids that are not (unknown or withdrawn),
        read together under the read lease like one `lookup`."""
        self.reads += len(ids)
        found = self._read(lambda conn: listed_books(conn, ids), keys=ids)
        return [found[i] for i in ids if i in found], [i for i in ids if i not in found]

    def decision(self, order_id: str) -> dict:
        """What was decided for an order id (any replica: decisions are replicated)."""
        decided = self._read(lambda conn: decisions.find(conn, order_id), (("order", order_id),))
        if decided is None:
            raise ApiError(404, f"no decision on order {order_id!r}")
        return decisions.outcome(decided)

    def books(self, deleted: bool | None, limit: int, after: list | None) -> dict:
        """Staff: a page of withdrawn books (True), listed ones (False) or all (None), by id."""
        query = select(books).order_by(books.c.id).limit(limit + 1)
        if deleted is not None:
            gone = books.c.deleted_at.is_not(None)
            query = query.where(gone if deleted else ~gone)
        if after is not None:
            query = query.where(books.c.id > after[0])
        rows = self._read(_rows(query), keys=(LISTING,))
        return page(*cut(rows, limit, lambda row: [row["id"]]))

    # -- the writer's writes: customers --------------------------------------
    def take(self, order_id: str, lines: list[dict], origin: str | None = None) -> dict:
        """Decide an order id, all lines or none (`catalog.decisions`)."""
        return self._write(
            lambda conn: decisions.take(conn, order_id, lines, self._age()), origin, "buy"
        )

    def buy(self, order_id: str, book_id: int, quantity: int, origin: str | None = None) -> dict:
        return self.take(order_id, [{"book_id": book_id, "quantity": quantity}], origin)

    def resolve(self, order_id: str, lines: list[dict]) -> dict:
        """Was this order decided? If not, fence it as aborted so it never applies (rule 4)."""
        return self._write(
            lambda conn: decisions.fence(conn, order_id, lines, self._age()), kind="resolve"
        )

    # -- the writer's writes: staff ----------------------------------------------
    def create(
        self, fields: dict, key: str | None, origin: str | None = None, by: dict | None = None
    ) -> dict:
        """A new book with the next id; the same Idempotency-Key never makes a second one,
        nor does a retry of the same request (its audit entry names the book made)."""
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

        def change(conn: Connection):
            made = _made_with(conn, key)
            if made and made["digest"] != digest:
                raise ApiError(422, "this Idempotency-Key was used for a different book")
            retried = audit.seen(conn, by, "add")
            if made or retried:
                row = any_book(conn, made["book_id"] if made else retried["book_id"])
                return row, {"books": [row], **({"key": made} if made else {})}
            next_id = conn.execute(select(func.coalesce(func.max(books.c.id), 0) + 1)).scalar_one()
            conn.execute(insert(books).values(id=next_id, version=1, stamp=stamp(conn), **fields))
            row = any_book(conn, next_id)
            entry = {"books": [row]}
            if key is not None:
                entry["key"] = {
                    "key": key,
                    "book_id": next_id,
                    "digest": digest,
                    "stamp": stamp(conn),
                    "age": self._age(),
                }
                conn.execute(insert(book_keys).values(**entry["key"]))
            after = audit.changed(None, row, EDITABLE)[1]
            entry["audit"] = audit.append(conn, by, "add", next_id, None, after)
            return row, entry

        return self._write(change, origin, kind="create", listing=True)

    def import_books(
        self, rows: list[dict], refused: int = 0, origin=None, by: dict | None = None
    ) -> dict:
        """A batch of new books in one transaction and one replicated entry; a row that
        repeats a book (or an earlier row) is skipped, naming it (`catalog.imports`)."""
        change = imports.import_batch(rows, refused, by)
        return self._write(change, origin, kind="import", listing=True, new_books=True)

    def edit(
        self, book_id: int, changes: dict, origin=None, kind="edit", by: dict | None = None
    ) -> dict:
        """Staff change of any of title, topic, cost, quantity of a listed book."""
        values = {k: v for k, v in changes.items() if k in EDITABLE and v is not None}
        return self._change(book_id, values, origin, kind, by=by)

    def update(
        self, book_id: int, price, quantity, origin: str | None = None, by: dict | None = None
    ) -> dict:
        action = "edit" if price is not None and quantity is not None else None
        action = action or ("price" if price is not None else "quantity")
        return self.edit(book_id, {"cost": price, "quantity": quantity}, origin, action, by)

    def withdraw(self, book_id: int, comment: str, origin=None, by: dict | None = None) -> dict:
        """Soft delete: the row and its stock stay; customers no longer see it.
        Withdrawing a withdrawn book changes nothing (the first comment stays)."""
        values = {"deleted_at": now_text(), "delete_comment": comment}
        return self._change(book_id, values, origin, "withdraw", unless_deleted=True, by=by)

    def restore(self, book_id: int, origin: str | None = None, by: dict | None = None) -> dict:
        """Back on sale with the stock it had; restoring a listed book changes nothing."""
        values = {"deleted_at": None, "delete_comment": None}
        return self._change(book_id, values, origin, "restore", unless_deleted=False, by=by)

    def _change(self, book_id, values, origin, kind, unless_deleted=None, by=None):
        """Set `values` on one book, bump its version and record it in the audit trail.
        unless_deleted=None: listed books only (404 otherwise); True/False: a book
        already withdrawn/listed is left as it is (and pushed again, so an earlier
        unacknowledged try lands). A retry of the same request changes nothing more."""

        def change(conn: Connection):
            row = listed_book(conn, book_id) if unless_deleted is None else any_book(conn, book_id)
            if audit.seen(conn, by, kind, book_id):
                return row, {"books": [row]}
            new = row
            if unless_deleted is None or (row["deleted_at"] is not None) != unless_deleted:
                stmt = update(books).where(books.c.id == book_id)
                conn.execute(stmt.values(version=books.c.version + 1, stamp=stamp(conn), **values))
                new = any_book(conn, book_id)
            before, after = audit.changed(row, new, values)
            entry = audit.append(conn, by, kind, book_id, before, after)
            return new, {"books": [new], "audit": entry}

        listing = kind in ("withdraw", "restore") or bool({"title", "topic"} & set(values))
        return self._write(change, origin, kind=kind, listing=listing)

    # -- staff accounts (`catalog.accounts`) and the audit trail --------------------
    def add_account(self, name: str, role: str, password_hash: str, by: dict | None) -> dict:
        return self._write(accounts.add(name, role, password_hash, by), kind="staff")

    def disable_account(self, name: str, by: dict | None) -> dict:
        return self._write(accounts.disable(name, by), kind="staff")

    def staff_accounts(self) -> list[dict]:
        return self._read(accounts.listed)

    def staff_account(self, name: str) -> dict:
        """One account with its hash (the front-ends check passwords and roles)."""
        found = self._read(lambda conn: accounts.account(conn, name))
        if found is None:
            raise ApiError(404, f"no staff account {name!r}")
        return found

    def audit_trail(self, wanted: dict, limit: int, after: int | None) -> dict:
        entries, cursor = self._read(lambda conn: audit.find(conn, wanted, limit, after))
        return {"entries": entries, "next": cursor}

    def _read(self, query, keys=()):
        """`query(conn)` under the read lease (a replica without one answers 503), and of
        none of `keys` in doubt (`catalog.doubt`)."""

        def found():
            mark = self._readable()
            with self.engine.connect() as conn:
                return self._answer(mark, query(conn))

        return self.doubts.settled(found, keys, self._position)

    def _position(self) -> int:
        return self.position

    def _landed(self, rows: tuple, epoch: int) -> bool:
        """A failed write is no longer in doubt here once it reached every catalog or its
        queue and every copy that missed it lapsed, or once we no longer write its epoch
        (our reads then need a new holder's base and lease)."""
        if not self.role.is_writer() or self.role.epoch != epoch:
            return True
        sent = self.replicator.sent_upto
        return all(seq <= sent[target] for seq, target, _ in rows) and (
            self.role.grants.behind_lapsed()
        )

    def take_all(self, orders: list[dict]) -> dict:
        """Group commit: decide several order ids in ONE transaction and ONE replication
        round. Each gets its own answer: its outcome (code 200), or a 404 naming its
        unknown books, for which nothing was written (`decisions.take` checks first)."""

        def decide(conn: Connection):
            answers, entries = [], []
            for order in orders:
                try:
                    outcome, entry = decisions.take(
                        conn, order["order_id"], order["items"], self._age()
                    )
                except ApiError as e:
                    answers.append(e.answer())
                    continue
                answers.append({"code": 200, **outcome})
                entries.append((entry, order.get("origin")))
            return answers, entries

        answers, epoch = self._commit(decide)
        CATALOG_WRITES.labels("buy").inc(sum(a["code"] == 200 for a in answers))
        return {"epoch": epoch, "results": [{**a, "epoch": epoch} for a in answers]}

    def compact(self, change) -> dict:
        """A compaction of idempotency records (`catalog.retention`): a replicated write."""
        return self._write(change, kind="compact")

    def _age(self) -> float | None:
        """The cluster age now (called by a write, as the writer, under the write lock)."""
        return self.age.now(self.role.epoch)

    def _write(
        self,
        change,
        origin: str | None = None,
        kind: str = "update",
        listing=False,
        new_books=False,
    ):
        """One write: `change(conn)` -> (result, replicated entry). `listing`: the write may
        change which books a search lists (front-ends then drop their cached searches);
        `new_books`: its books are new, so front-ends drop searches only."""

        def one(conn: Connection):
            result, entry = change(conn)
            return result, [(entry, origin)]

        result, epoch = self._commit(one, listing, new_books)
        CATALOG_WRITES.labels(kind).inc()
        return {**result, "epoch": epoch} if "outcome" in result else result

    def _commit(self, change, listing: bool = False, new_books: bool = False):
        """Run `change(conn)` -> (result, [(entry, origin)]) as the writer in one transaction,
        stage its entries, and return (result, epoch) once they are acknowledged."""
        doubt = Write(0, frozenset())
        with self.ctx.write_lock:
            if not self.role.may_write():  # checked under the lock a takeover takes
                raise ApiError(421, "not the primary")
            epoch = self.role.epoch
            try:
                with self.engine.begin() as conn:
                    result, entries, staged = self._stage(conn, change, epoch)
                    keys = keys_of((entry for entry, _ in entries), listing or new_books)
                    doubt = Write(self.position, keys)
                    self.doubts.begin(doubt)  # before the commit makes it readable here
            except BaseException:
                self.doubts.answered(doubt)  # nothing was committed
                raise
            for entry, origin in entries:
                for book in [None] if new_books else entry.get("books", ()):
                    self.copies.note_change(book, origin, listing)
            ticket = self.replicator.enqueue(staged)  # rounds see rows in commit order
            if not staged:
                self.doubts.answered(doubt)
                return result, epoch  # nothing written (every order named unknown books)
            with self._acking_lock:
                self.acking += 1
        try:
            return self._acknowledge(result, epoch, ticket, staged, doubt)
        finally:
            with self._acking_lock:
                self.acking -= 1

    def _stage(self, conn: Connection, change, epoch: int):
        """`change(conn)` with this commit's position on every row, its entries staged:
        (result, [(entry, origin)], outbox rows)."""
        self.position = next_position(self.position, epoch)
        conn.info[STAMP] = self.position  # every row written here carries it
        try:
            result, entries = change(conn)
        finally:
            del conn.info[STAMP]
        staged = [
            row
            for entry, _ in entries
            for row in self.replicator.stage(conn, {**entry, "epoch": epoch})
        ]
        return result, entries, staged

    def _acknowledge(self, result, epoch: int, ticket, staged, doubt: Write):
        # Delivered outside the lock, so concurrent writes share one round (group push).
        failed = Write(doubt.position, doubt.keys, tuple(staged), epoch)
        try:
            missing = self.replicator.wait(ticket, staged)
        except BaseException:
            self.doubts.answered(failed, failed=True)
            raise
        if missing:
            self.doubts.answered(failed, failed=True)
            raise ApiError(
                503,
                f"not acknowledged: neither {', '.join(missing)} nor its recovery queue took it",
                epoch=epoch,
            )
        try:
            self.role.grants.wait_for_behind(time.sleep, self.role.grants.longest)
        finally:
            # Replicated: if we lost the lease meanwhile, our reads wait for a new base.
            self.doubts.answered(doubt)
        if not (self.role.is_writer() and self.role.epoch == epoch):
            # Frozen or cut off past the lease while the write went out: another holder
            # may have taken over, so this node cannot vouch for it. The write is
            # replicated or superseded; a retry with the same key finds out which.
            raise ApiError(503, "lease lost before the write was acknowledged", epoch=epoch)
        return result, epoch

    def hand_off(self, timeout: float = 2.0) -> None:
        """On a graceful stop (an on-stop hook): no new write starts; the writes already
        committed are answered (up to `timeout`); then the lease is freed, so another
        catalog takes over at once instead of waiting out a quiet lease. Callers meet a
        421 or a refused connection meanwhile and retry at the next primary."""
        self.role.closing = True
        with self.ctx.write_lock:
            pass  # a write that passed the check before `closing` is now counted in acking
        deadline = time.monotonic() + timeout
        while self.acking and time.monotonic() < deadline:
            time.sleep(0.01)
        self.role.step_down()

    def seed(self, path: Path) -> int:
        """Load the seed catalog into an empty database (every replica seeds alike)."""
        with path.open("rb") as f:
            seed_books = tomllib.load(f)["books"]
        with self.ctx.write_lock, self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(books)).scalar_one():
                return 0
            conn.execute(insert(books), [{**b, "version": 1} for b in seed_books])
        return len(seed_books)


def _rows(query):
    """A read of every row `query` selects, as dicts."""
    return lambda conn: [dict(r) for r in conn.execute(query).mappings()]


def _made_with(conn: Connection, key: str | None) -> dict | None:
    if key is None:
        return None
    row = conn.execute(select(book_keys).where(book_keys.c.key == key)).mappings().first()
    return dict(row) if row else None
