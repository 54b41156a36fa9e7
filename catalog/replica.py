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

from sqlalchemy import bindparam, delete, func, insert, literal, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from catalog import search
from catalog.models import (
    AuditEntry,
    Book,
    BookKey,
    Meta,
    OrderDecision,
    StaffAccount,
    outbox_table,
)
from catalog.retention import apply_compact
from catalog.schemas import CatalogEntrySchema
from common.replication.replicator import CannotApplyYet
from common.replication.routes import valid_entries
from common.storage import restored
from common.storage.raw import Raw
from common.web import ApiError, QueryInt

if TYPE_CHECKING:
    from catalog.heal import Healer

books = Book.__table__
decisions = OrderDecision.__table__
book_keys = BookKey.__table__
meta = Meta.__table__
accounts = StaffAccount.__table__
audit_log = AuditEntry.__table__
BOOK_COLUMNS = (
    "title",
    "topic",
    "cost",
    "quantity",
    "version",
    "deleted_at",
    "delete_comment",
    "stamp",
)
ACCOUNT_COLUMNS = ("role", "password_hash", "created_at", "disabled_at", "version", "stamp")
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

    def __init__(self, epoch: int, message: str, base: tuple[int, int] | None = None):
        super().__init__(message)
        self.epoch = epoch  # the epoch whose base is missing
        self.base = base  # (made from base, at position) of a delta it could not take


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
            if not self.healer.heal(e.epoch, str(e), e.base):
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
                if "base" in entry or "delta" in entry:
                    if epoch > base:
                        _take_base(conn, entry, base)
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
            # Take the newest one reachable, whole, then replay again (a miss raises: retried).
            self._install_newest(self._peer_states(skip=set(), since=None))
            drained = self.store.replicator.drain_queue(epoch=epoch)
        if not drained:
            return False  # the recovery queue may hold acknowledged writes: wait for it
        with self.store.engine.connect() as conn:
            reached = position_of(conn)
        states = self._peer_states(skip=self.store.role.grants.behind, since=reached)
        for name in set(self.store.replicator.peers) - {s["node"] for s in states}:
            self.store.role.grants.miss(name)  # did not answer: its base goes to its queue at once
        self._merge_same_base(states)
        with self.store.ctx.write_lock:
            with self.store.engine.begin() as conn:
                base = _base_entry(conn, epoch)
                _set_meta(conn, BASE_FROM, data_epoch_of(conn))  # for replicas to catch up
                set_data_epoch(conn, epoch)
                set_stamped_base(conn, epoch)  # this holder stamps every row it writes
                self.store.age.carry(conn, epoch)  # the cluster age goes on (catalog.retention)
                restored.clear(conn)  # only a lone catalog takes over restored (role.whole)
                staged = self.store.replicator.stage(conn, base)
                self.store.position = position_of(conn)  # its commits stamp from here on
            self.store.data_epoch, self.store.restored = epoch, None
            ticket = self.store.replicator.enqueue(staged)
        return not self.store.replicator.wait(ticket, staged)

    def _peer_states(self, skip: set[str], since: int | None) -> list[dict]:
        """Every reachable catalog's rows at position `since` or later (None: all of
        them), asked all at once (a cut one costs one timeout).

        Only a help: every write an earlier holder acknowledged is already here or
        in our queue. So the old holder (`skip`) is not asked, and a slow peer is
        not waited for long: a frozen one would hold the takeover back.
        """
        peers = [n for n in self.store.replicator.peers.values() if n.name not in skip]
        tuning = self.store.ctx.cluster.tuning

        def ask(node):
            timeout = (tuning.connect_timeout, tuning.read_lease / 2)
            params = {} if since is None else {"since": since}
            state = self.store.replicator.fetch_state(node, timeout=timeout, params=params)
            return state and {**state, "node": node.name}

        with ThreadPoolExecutor(max_workers=max(1, len(peers))) as pool:
            return [state for state in pool.map(ask, peers) if state]

    def _merge_same_base(self, states: list[dict]) -> None:
        """Merge what the reachable replicas of our own base hold at or beyond our own
        position (`snapshot(since=...)`): the commits of the old holder we lack.

        Each such replica holds a prefix of that base's holder's commits, so
        their union is that holder's longest prefix: it may add writes that
        were never acknowledged, never half of one. A replica of a newer base
        is left out: that base was never acknowledged, or the drained queue would
        have brought it here; it heals from this holder (`catalog.heal`).
        """
        with self.store.ctx.write_lock, self.store.engine.begin() as conn:
            own = data_epoch_of(conn)
            for state in states:
                if state.get("data_epoch", 0) == own and state.get("since") is not None:
                    for entry in state["entries"]:
                        _apply_one(conn, entry)

    def _install_newest(self, states: list[dict]) -> None:
        """Take the newest base among the replicas' whole states (as the merge above,
        but installing a newer base whole: our queue lacks it)."""
        with self.store.ctx.write_lock, self.store.engine.begin() as conn:
            own = data_epoch_of(conn)
            newest = max([s.get("data_epoch", 0) for s in states] + [own])
            chosen = [s for s in states if s.get("data_epoch", 0) == newest]
            if newest > own:
                _install(conn, _split(chosen[0]["entries"]), newest)
                set_stamped_base(conn, chosen[0].get("stamped_base"))
            for state in chosen:
                for entry in state["entries"]:
                    _apply_one(conn, entry)
        if newest > own:
            self.store.restored = None

    def snapshot(self) -> dict:
        """GET /sync: what this replica holds (query `since`: only its rows at that
        position or later), the epoch of its base, whether that base is stamped, and
        the position it has reached."""
        since = QUERY_SINCE.read()
        with self.store.engine.connect() as conn:
            if not since and _more_rows_than(conn, WHOLE_STATE_ROWS):
                raise ApiError(
                    413,
                    f"over {WHOLE_STATE_ROWS:,} rows: too many for one answer; ask with "
                    "`since`, or heal from the writer's snapshot (GET /snapshot)",
                )
            state = _state(conn, since)
            epoch, stamped = data_epoch_of(conn), stamped_base_of(conn)
            reached = position_of(conn)
        entries = [{one: row} for _, part, one in PARTS for row in state[part]]
        return {
            "data_epoch": epoch,
            "stamped_base": stamped,
            "since": since,
            "position": reached,
            "entries": entries,
        }


DATA_EPOCH = select(meta.c.value).where(meta.c.key == "data_epoch")  # built once
# Every push reads it first: as a Core execute it cost more than applying the rows.
RAW_DATA_EPOCH = Raw(DATA_EPOCH)
QUERY_SINCE = QueryInt("since", default=None, low=0, high=2**63 - 1)
# A whole state is built in memory on the event loop: at a million titles that took the
# serving catalog tens of seconds (its lease lapsed), and a holder taking over asked again
# at each try. Past this many rows the holder steps aside instead (`catalog.role`), and
# whoever takes over heals the others from a snapshot file (`catalog.heal`).
WHOLE_STATE_ROWS = 50_000


def data_epoch_of(conn: Connection) -> int:
    row = RAW_DATA_EPOCH.run(conn, {}).fetchone()
    return int(row[0]) if row else 0


def set_data_epoch(conn: Connection, epoch: int) -> None:
    _set_meta(conn, "data_epoch", epoch)


def stamped_base_of(conn: Connection) -> int | None:
    """The epoch of this replica's base if that base, and every update of its epoch
    here, came from a writer that stamps rows (so a delta from it is whole)."""
    return meta_int(conn, "stamped_base")


BASE_FROM = "base_from"  # at a holder: the base its own base was made from


def meta_int(conn: Connection, key: str) -> int | None:
    row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
    return int(row[0]) if row else None


def set_stamped_base(conn: Connection, epoch: int | None) -> None:
    if epoch is None:
        conn.execute(delete(meta).where(meta.c.key == "stamped_base"))
    else:
        _set_meta(conn, "stamped_base", epoch)


def _set_meta(conn: Connection, key: str, value: int) -> None:
    stmt = sqlite_insert(meta).values(key=key, value=str(value))
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": str(value)})
    )


def position_of(conn: Connection) -> int:
    """The position this replica has reached: the newest stamp it holds (0: none)."""
    newest = [select(func.max(table.c.stamp)) for table, _, _ in PARTS]
    return max((conn.execute(query).scalar() or 0) for query in newest)


def _state(conn: Connection, since: int | None = None) -> dict:
    """Every replicated row, or (`since` > 0) those at position `since` or later."""

    def rows(table):
        return [dict(r) for r in conn.execute(_rows_query(table, since)).mappings()]

    return {part: rows(table) for table, part, _ in PARTS}


def _more_rows_than(conn: Connection, limit: int) -> bool:
    """Whether the replicated tables hold more than `limit` rows together (reads at most
    `limit + 1` of each)."""
    total = 0
    for table, _, _ in PARTS:
        some = select(func.count()).select_from(
            select(literal(1)).select_from(table).limit(limit + 1).subquery()
        )
        total += conn.execute(some).scalar() or 0
    return total > limit


def _rows_query(table, since: int | None):
    """A table's rows in key order, or (`since` > 0) those stamped `since` or later in
    stamp order: then the stamp index finds them. In key order SQLite walked the whole
    key index instead (2.4 s for a delta of a million order decisions, on the event loop
    of a holder taking over or of the peer it asks: long enough for its lease to lapse)."""
    if not since:
        return select(table).order_by(*table.primary_key)
    return select(table).where(table.c.stamp >= since).order_by(table.c.stamp, *table.primary_key)


def _base_entry(conn: Connection, epoch: int) -> dict:
    """The base of `epoch` made of this holder's data (before it is marked as that base).

    When the data comes from a stamped base N, a delta: the rows at the position
    this holder reached or later (its last commit, which a replica may hold half
    of). A replica of base N at that same position holds everything before it
    as we do (each holds a prefix of base N's holder's commits), so the delta
    makes it what we are; any other replica heals (docs/scale.md §6). After an
    upgrade from a version that did not stamp rows: the whole state."""
    own = data_epoch_of(conn)
    if own == 0 or stamped_base_of(conn) == own:
        reached = position_of(conn) if own else 0  # no base yet: the whole state
        delta = _state(conn, reached)
        return {"epoch": epoch, "delta": delta, "base_from": own, "position": reached} | STAMPED
    return {"epoch": epoch, "base": _state(conn)} | STAMPED


STAMPED = {"stamped": True}  # a base made by a writer that stamps every row it writes


def _take_base(conn: Connection, entry: dict, have: int) -> None:
    """Install a new holder's base (whole, or a delta from the base this replica has)."""
    epoch = entry["epoch"]
    if "delta" in entry:
        _check_delta(conn, entry, have)
        _install_delta(conn, entry["delta"], entry.get("position", 0))
    else:
        _install(conn, entry["base"])
    set_data_epoch(conn, epoch)
    set_stamped_base(conn, epoch if entry.get("stamped") else None)
    restored.clear(conn)  # a holder's whole base: what a restored file lacked is in it


def _split(entries: list[dict]) -> dict:
    return {part: [e[one] for e in entries if e.get(one)] for _, part, one in PARTS}


def _install(conn: Connection, base: dict, epoch: int | None = None) -> None:
    """Replace this replica's data by a holder's base: what it had beyond was never acked."""
    with search.untriggered(conn):
        for table, _, _ in PARTS:
            conn.execute(delete(table))
        conn.execute(delete(outbox_table))
        for table, part, _ in PARTS:
            if base.get(part):
                conn.execute(insert(table), base[part])
    if epoch is not None:
        set_data_epoch(conn, epoch)
        restored.clear(conn)  # a holder's whole base: what a restored file lacked is in it


def _check_delta(conn: Connection, entry: dict, have: int) -> None:
    """Behind unless the delta makes this replica what its holder is: we hold its base
    N (stamped), every commit before its position, and nothing at or beyond it that
    it lacks (a write the old holder never had acknowledged, which reached only us:
    a delta cannot say how that row stood before it; the snapshot can)."""
    epoch, base, at = entry["epoch"], entry.get("base_from", 0), entry.get("position", 0)
    if not (have == base and (base == 0 or stamped_base_of(conn) == base)):
        raise Behind(epoch, f"the base of epoch {epoch} is a delta of base {base} (have {have})")
    if not at:
        return  # position 0: the whole state
    if position_of(conn) < at:
        why = f"lacks commits of epoch {base} that the holder of {epoch} has"
        raise Behind(epoch, why, (base, at))
    if _beyond(conn, entry["delta"], at):
        why = f"holds writes of epoch {base} the holder of {epoch} never had"
        raise Behind(epoch, why, (base, at))


def _beyond(conn: Connection, delta: dict, at: int) -> bool:
    """Whether this replica has a row at position `at` or later that the delta lacks."""
    for table, part, _ in PARTS:
        keys = [c.name for c in table.primary_key]
        sent = {tuple(row[k] for k in keys) for row in delta.get(part, ())}
        query = select(*table.primary_key).where(table.c.stamp >= at)
        if any(tuple(row) not in sent for row in conn.execute(query)):
            return True
    return False


def _install_delta(conn: Connection, delta: dict, at: int) -> None:
    """Make this replica the new holder's state: our rows at position `at` or later are
    all in the delta (`_check_delta`), so they go and the holder's come in (overwriting
    a row we hold from before `at` that the holder changed since: its own last commit)."""
    for table, _, _ in PARTS:
        conn.execute(delete(table).where(table.c.stamp >= at) if at else delete(table))
    conn.execute(delete(outbox_table))
    for table, part, _ in PARTS:
        if delta.get(part):
            conn.execute(OVERWRITE[table.name], delta[part])


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
# The columns an index of books is built on. The upsert above sets every column, and
# SQLite rewrites the entry of every index whose columns an UPDATE sets, changed or
# not: at a million books a backup's apply of a buy cost 50-70 us a book that way,
# 20 us when only the stock, price and position are set (the primary's own decrement
# sets only those). A row whose indexed columns are the entry's gets that narrow update.
INDEXED = ("title", "topic", "deleted_at")
STOCK_COLUMNS = tuple(c for c in BOOK_COLUMNS if c not in INDEXED)  # what it sets
RAW_APPLY_STOCK = Raw(
    update(books)
    .where(
        books.c.id == bindparam("id"),
        books.c.version < bindparam("version"),
        *(books.c[c].is_(bindparam(c)) for c in INDEXED),
    )
    .values({c: bindparam(f"new_{c}") for c in STOCK_COLUMNS})
)
NARROW_ROWS = 8  # an entry of a buy or an order; an import's 1000 new books are upserted
DECISION_DEFAULTS = {"book_id": None, "items": None, "stamp": None, "age": None}
RAW_ADD_DECISION = Raw(
    ADD_DECISION, ["order_id", "quantity", "status", "total", *DECISION_DEFAULTS]
)


def _overwrite_statement(table):
    stmt = sqlite_insert(table)
    keys = [c.name for c in table.primary_key]
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )


# An update, not REPLACE: REPLACE's implicit delete would skip the tables' triggers.
OVERWRITE = {table.name: _overwrite_statement(table) for table, _, _ in PARTS}


BOOK_DEFAULTS = {"deleted_at": None, "delete_comment": None, "stamp": None}  # older writers'


def _not_narrowly_applied(conn: Connection, rows: list[dict]) -> list[dict]:
    """Apply the few rows whose indexed columns stand as they are with RAW_APPLY_STOCK;
    return the rest (new, renamed, withdrawn, or not newer: the upsert decides)."""
    rows = [{**BOOK_DEFAULTS, **row} for row in rows]
    if len(rows) > NARROW_ROWS:
        return rows
    rest = []
    for row in rows:
        narrow = {c: row[c] for c in ("id", "version", *INDEXED)}
        narrow.update((f"new_{c}", row[c]) for c in STOCK_COLUMNS)
        if RAW_APPLY_STOCK.run(conn, narrow).rowcount != 1:
            rest.append(row)
    return rest


def _apply_one(conn: Connection, entry: dict) -> None:
    rows = ([entry["book"]] if entry.get("book") else []) + entry.get("books", [])
    if rows:  # one statement for all (an import batch carries 1000)
        RAW_APPLY_BOOK.many(conn, _not_narrowly_applied(conn, rows))
    if entry.get("order"):
        RAW_ADD_DECISION.run(conn, {**DECISION_DEFAULTS, **entry["order"]})
    if entry.get("key"):
        conn.execute(ADD_KEY, entry["key"])
    if entry.get("account"):
        conn.execute(APPLY_ACCOUNT, entry["account"])
    if entry.get("audit"):
        conn.execute(ADD_AUDIT, entry["audit"])
    if entry.get("compact"):
        apply_compact(conn, entry["compact"])
