"""A catalog as a replica: takes the writer's pushes and queued updates, and takes over.

Each replica's data descends from one holder's *base* (`data_epoch`): it
applies updates of that epoch (newer version wins, decisions are
insert-once), installs a base of a newer epoch whole, and ignores updates
of older epochs, which that base supersedes. A new holder first gathers
every acknowledged write (its recovery queue, and the reachable replicas of
the newest base), makes that the base of its epoch and delivers it. A
replica that finds itself without the base it needs heals from the writer's
snapshot (`catalog.heal`) and applies the update again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from catalog.models import (
    AuditEntry,
    Book,
    BookKey,
    Meta,
    OrderDecision,
    StaffAccount,
    outbox_table,
)
from catalog.schemas import CatalogEntrySchema
from common.replication.replicator import CannotApplyYet
from common.replication.routes import valid_entries
from common.storage import restored
from common.storage.raw import Raw
from common.web import ApiError

if TYPE_CHECKING:
    from catalog.heal import Healer

books = Book.__table__
decisions = OrderDecision.__table__
book_keys = BookKey.__table__
meta = Meta.__table__
accounts = StaffAccount.__table__
audit_log = AuditEntry.__table__
BOOK_COLUMNS = ("title", "topic", "cost", "quantity", "version", "deleted_at", "delete_comment")
ACCOUNT_COLUMNS = ("role", "password_hash", "created_at", "disabled_at", "version")
# The replicated tables and their part of a base or a state: (table, base key, entry key).
PARTS = (
    (books, "books", "book"),
    (decisions, "decisions", "order"),
    (book_keys, "keys", "key"),
    (accounts, "accounts", "account"),
    (audit_log, "audit", "audit"),
)


class Behind(CannotApplyYet):
    """An update from a newer epoch than this replica's base: it needs that base first."""

    def __init__(self, epoch: int, message: str):
        super().__init__(message)
        self.epoch = epoch  # the epoch whose base is missing


class CatalogReplica:
    def __init__(self, store):
        self.store = store  # CatalogStore: the node's data, role and replicator
        self.healer: Healer | None = None  # set by the app factory

    def receive(self, push: dict) -> dict:
        """A push from the writer: fenced by epoch; maybe replay the queue; apply; lease."""
        epoch = push["epoch"]
        if any(entry.get("epoch", 0) > epoch for entry in push["entries"]):
            raise ApiError(409, "entries: an entry's epoch is newer than the push's", epoch=epoch)
        if self.store.role.epoch and self.store.role.epoch >= epoch:
            raise ApiError(409, f"this catalog is the writer of epoch {self.store.role.epoch}")
        self.store.role.fence.admit(epoch, "push")
        self.store.role.saw(epoch)
        try:
            if push.get("drain_upto") is not None:
                if not self.store.replicator.drain_queue(upto=push["drain_upto"], epoch=epoch):
                    raise ApiError(503, "recovery queue not reachable", status="behind")
            self._apply_or_heal(push["entries"])
            if push.get("lease") or push.get("drain_upto") is not None:
                self._hold_base_of(epoch)  # its writer thinks this replica has it
        except Behind as e:
            raise ApiError(503, str(e), status="behind", data_epoch=self.store.data_epoch) from None
        if push.get("lease") and self.store.data_epoch == epoch:
            self.store.role.read_lease.grant(epoch, push["lease"])
        stamp = self.store.role.read_lease.stamp()
        return {"applied": True, "data_epoch": self.store.data_epoch, "stamp": stamp}

    def apply_queued(self, entries: list) -> None:
        """Entries replayed from the recovery queue: checked first (the queue takes any)."""
        self._apply_or_heal(valid_entries(CatalogEntrySchema, entries))

    def _apply_or_heal(self, entries: list[dict]) -> None:
        try:
            self.apply(entries)
        except Behind as e:
            if not self.healer.heal(e.epoch, str(e)):
                raise
            self.apply(entries)

    def _hold_base_of(self, epoch: int) -> None:
        """The writer of `epoch` offers a lease or a catch-up: without its base (lost
        from the queue, a new replica), heal now rather than wait for an update."""
        have = self.store.data_epoch
        if have < epoch and not self.healer.heal(epoch, f"no base of epoch {epoch} (have {have})"):
            raise Behind(epoch, f"no base of epoch {epoch} (have {have})")

    def apply(self, entries: list[dict]) -> None:
        """Apply replicated entries in order (see the module docstring); all or nothing."""
        with self.store.ctx.write_lock, self.store.engine.begin() as conn:
            base = start = data_epoch_of(conn)
            for entry in entries:
                epoch = entry.get("epoch", 0)
                if "base" in entry:
                    if epoch > base:
                        _install(conn, entry["base"], epoch)
                        base = epoch
                elif epoch > base:
                    raise Behind(epoch, f"update of epoch {epoch} before its base (have {base})")
                elif epoch == base:
                    _apply_one(conn, entry)
        self.store.data_epoch = base
        if base > start:  # a holder's base was installed (and the restore mark cleared)
            self.store.restored = None

    def take_over(self, epoch: int) -> bool:
        """A new holder: gather every acknowledged write, make it the base, deliver it."""
        with self.store.ctx.write_lock:
            self.store.role.fence.observe(epoch)  # from here on, older pushes are refused
        try:
            drained = self.store.replicator.drain_queue(epoch=epoch)
        except Behind:
            # Our queue holds updates of a base we never got (it was lost on the way):
            # that base is on the replicas of its epoch, the old holder's first of all.
            # Take the newest one reachable, then replay again (a miss raises: retried).
            self._merge_newest(self._peer_states(skip=set()))
            drained = self.store.replicator.drain_queue(epoch=epoch)
        if not drained:
            return False  # the recovery queue may hold acknowledged writes: wait for it
        states = self._peer_states(skip=self.store.role.grants.behind)
        for name in set(self.store.replicator.peers) - {s["node"] for s in states}:
            self.store.role.grants.miss(name)  # did not answer: its base goes to its queue at once
        self._merge_newest(states)
        with self.store.ctx.write_lock:
            with self.store.engine.begin() as conn:
                set_data_epoch(conn, epoch)
                restored.clear(conn)  # only a lone catalog takes over restored (role.whole)
                base = {"epoch": epoch, "base": _state(conn)}
                staged = self.store.replicator.stage(conn, base)
            self.store.data_epoch, self.store.restored = epoch, None
            ticket = self.store.replicator.enqueue(staged)
        return not self.store.replicator.wait(ticket, staged)

    def _peer_states(self, skip: set[str]) -> list[dict]:
        """Every reachable catalog's state, asked all at once (a cut one costs one timeout).

        Only a help: every write an earlier holder acknowledged is already here or
        in our queue. So the old holder (`skip`) is not asked, and a slow peer is
        not waited for long: a frozen one would hold the takeover back.
        """
        peers = [n for n in self.store.replicator.peers.values() if n.name not in skip]
        tuning = self.store.ctx.cluster.tuning

        def ask(node):
            timeout = (tuning.connect_timeout, tuning.read_lease / 2)
            state = self.store.replicator.fetch_state(node, timeout=timeout)
            return state and {**state, "node": node.name}

        with ThreadPoolExecutor(max_workers=max(1, len(peers))) as pool:
            return [state for state in pool.map(ask, peers) if state]

    def _merge_newest(self, states: list[dict]) -> None:
        """Merge the reachable replicas whose data comes from the newest base.

        Each such replica holds a prefix of that base's holder's updates, so
        their union is that holder's longest prefix: it may add writes that
        were never acknowledged, never half of one.
        """
        with self.store.ctx.write_lock, self.store.engine.begin() as conn:
            own = data_epoch_of(conn)
            newest = max([s.get("data_epoch", 0) for s in states] + [own])
            chosen = [s for s in states if s.get("data_epoch", 0) == newest]
            if newest > own:
                _install(conn, _split(chosen[0]["entries"]), newest)
            for state in chosen:
                for entry in state["entries"]:
                    _apply_one(conn, entry)
        if newest > own:
            self.store.restored = None

    def snapshot(self) -> dict:
        """Everything this replica holds, with the epoch of its base."""
        with self.store.engine.connect() as conn:
            state = _state(conn)
            epoch = data_epoch_of(conn)
        entries = [{one: row} for _, part, one in PARTS for row in state[part]]
        return {"data_epoch": epoch, "entries": entries}


DATA_EPOCH = select(meta.c.value).where(meta.c.key == "data_epoch")  # built once


def data_epoch_of(conn: Connection) -> int:
    row = conn.execute(DATA_EPOCH).first()
    return int(row[0]) if row else 0


def set_data_epoch(conn: Connection, epoch: int) -> None:
    stmt = sqlite_insert(meta).values(key="data_epoch", value=str(epoch))
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": str(epoch)})
    )


def _state(conn: Connection) -> dict:
    return {
        part: [dict(r) for r in conn.execute(select(table).order_by(*table.primary_key)).mappings()]
        for table, part, _ in PARTS
    }


def _split(entries: list[dict]) -> dict:
    return {part: [e[one] for e in entries if e.get(one)] for _, part, one in PARTS}


def _install(conn: Connection, base: dict, epoch: int) -> None:
    """Replace this replica's data by a holder's base: what it had beyond was never acked."""
    for table, _, _ in PARTS:
        conn.execute(delete(table))
    conn.execute(delete(outbox_table))
    for table, part, _ in PARTS:
        if base.get(part):
            conn.execute(insert(table), base[part])
    set_data_epoch(conn, epoch)
    restored.clear(conn)  # a holder's whole base: what a restored file lacked is in it


def _newer_version_statement(table, key, columns):
    stmt = sqlite_insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[key],
        set_={c: stmt.excluded[c] for c in columns},
        where=table.c.version < stmt.excluded.version,
    )


# Built once, values bound per entry (a statement built per row costs its cache key).
APPLY_BOOK = _newer_version_statement(books, books.c.id, BOOK_COLUMNS)
APPLY_ACCOUNT = _newer_version_statement(accounts, accounts.c.name, ACCOUNT_COLUMNS)
ADD_DECISION = sqlite_insert(decisions).on_conflict_do_nothing()
ADD_KEY = sqlite_insert(book_keys).on_conflict_do_nothing()
ADD_AUDIT = sqlite_insert(audit_log).on_conflict_do_nothing()  # insert-once, by id or write id
# What every buy's entry applies, on sqlite3's cursor (common.storage.raw).
RAW_APPLY_BOOK = Raw(APPLY_BOOK, ["id", *BOOK_COLUMNS])
RAW_ADD_DECISION = Raw(
    ADD_DECISION, ["order_id", "book_id", "quantity", "status", "total", "items"]
)


def _apply_one(conn: Connection, entry: dict) -> None:
    for row in ([entry["book"]] if entry.get("book") else []) + entry.get("books", []):
        RAW_APPLY_BOOK.run(conn, {"deleted_at": None, "delete_comment": None, **row})
    if entry.get("order"):
        RAW_ADD_DECISION.run(conn, {"book_id": None, "items": None, **entry["order"]})
    if entry.get("key"):
        conn.execute(ADD_KEY, entry["key"])
    if entry.get("account"):
        conn.execute(APPLY_ACCOUNT, entry["account"])
    if entry.get("audit"):
        conn.execute(ADD_AUDIT, entry["audit"])
