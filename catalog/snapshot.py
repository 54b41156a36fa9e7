"""A catalog's replicated data as one SQLite file: made at the writer, installed at a replica.

The writer makes a snapshot with `VACUUM INTO`: one read transaction, so the
file is a consistent cut of its commits, with the `data_epoch` of that cut.
A replica verifies the file (a SQLite database whose tables have the
columns it needs) and installs it in ONE transaction under its write lock:

- a snapshot of a newer epoch than the replica's base *replaces* its books,
  order decisions, book keys, staff accounts and audit trail, and clears its
  outbox (like a base pushed by a new holder: what the replica had beyond
  it was never acknowledged);
- a snapshot of the same epoch is *merged*: newer version wins per book,
  decisions and keys are insert-once (it fills a gap, it never undoes an
  update the replica applied after the snapshot was made);
- a snapshot of an older epoch is refused.

A bad file, or a failure at any point, leaves the replica's data as it was.

Why the writer's later pushes and queued entries converge after a snapshot.
Say the writer W of epoch E made the snapshot at commit point t. Every write
W committed up to t is in it. Every write W commits after t is staged in
W's outbox, for this replica, in the same transaction, and reaches it by a
push or through its recovery queue (design §7 rule 2), in commit order per
target. Such an entry carries the whole new row with its version, and a row's
version only grows at W, so applying it is "newer version wins": idempotent
and order-insensitive. Entries made before t that arrive after the install
carry versions the snapshot already has and change nothing; decisions and
keys are insert-once and never change at W. Entries of an older epoch are
ignored (the snapshot's base supersedes them), and an entry of a newer epoch
waits for that epoch's base (pushed by its holder, or another snapshot). So
once every entry W made after t has arrived, the replica holds, row for row,
what W holds. It also stays a prefix of W's commits in between (what a new
holder's merge of replicas assumes, `catalog.replica`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from gevent import get_hub, monkey
from sqlalchemy import Column, MetaData, Table, delete, select, true
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from catalog import search
from catalog.models import outbox_table
from catalog.replica import (
    ACCOUNT_COLUMNS,
    BOOK_COLUMNS,
    accounts,
    audit_log,
    book_keys,
    books,
    data_epoch_of,
    decisions,
    meta,
    set_data_epoch,
    set_stamped_base,
)
from common.storage import restored
from common.web import ApiError

MAGIC = b"SQLite format 3\x00"
MEDIA_TYPE = "application/vnd.sqlite3"
ATTACHED = "snapshot"  # the schema name the received file is attached under
CHUNK = 1 << 20  # bytes sent or received at a time
REPLICATED = (books, decisions, book_keys, accounts, audit_log)
# A writer of an older version has no staff tables: its snapshot is taken without them.
NEEDED = (books, decisions, book_keys)
# Columns a writer of an older version lacks: NULL when its snapshot is taken in.
LATER_COLUMNS = {"stamp"}
EPOCH_QUERY = "SELECT value FROM meta WHERE key = 'data_epoch'"
STAMPED_QUERY = "SELECT value FROM snapshot.meta WHERE key = 'stamped_base'"
COLUMNS_QUERY = "SELECT name FROM pragma_table_info(?)"
ATTACHED_COLUMNS_QUERY = "SELECT name FROM pragma_table_info(?, 'snapshot')"
TABLES_QUERY = "SELECT name FROM snapshot.sqlite_master WHERE type = 'table'"


class SnapshotError(ApiError):
    """A snapshot that was not installed (400: a bad file; 409: an epoch too old)."""

    def __init__(self, message: str, code: int = 400, **extra):
        super().__init__(code, message, **extra)


# -- at the writer -----------------------------------------------------------------
def make(db_path: Path) -> tuple[BinaryIO, int]:
    """A consistent copy of the database at `db_path`, as an open file that is already
    unlinked (it goes when closed: nothing is left behind, and it is read from disk as
    it is sent, never whole in memory), and the data epoch it holds.

    Under gevent (the catalog's worker) the copy runs in a real thread: SQLite
    lets go of the GIL meanwhile, so a large copy does not stop this node's
    lease renewals and Raft ticks. (It uses no lock or pool of the process.)"""
    if monkey.is_module_patched("threading"):
        return get_hub().threadpool.apply(_make, (db_path,))
    return _make(db_path)


def _make(db_path: Path) -> tuple[BinaryIO, int]:
    fd, name = tempfile.mkstemp(dir=db_path.parent, prefix=".snapshot-", suffix=".sqlite3")
    os.close(fd)  # VACUUM INTO writes into a file that is empty or absent
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as source:
            source.execute("VACUUM INTO ?", (name,))
        with contextlib.closing(sqlite3.connect(name)) as copy:
            row = copy.execute(EPOCH_QUERY).fetchone()
        return open(name, "rb"), int(row[0]) if row else 0  # noqa: SIM115  # the caller closes
    finally:
        _remove(Path(name))


# -- at a replica ------------------------------------------------------------------
@contextlib.contextmanager
def received(
    source: bytes | Callable[[BinaryIO], None], folder: Path
) -> Iterator[tuple[Path, int]]:
    """A snapshot written to a temp file in `folder` and verified: (its path, its data
    epoch). `source`: the bytes, or a function that writes them into the file as they
    arrive (a download). The file is removed on leaving."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".received-", suffix=".sqlite3")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(source, bytes):
                f.write(source)
            else:
                source(f)
        with path.open("rb") as f:
            head = f.read(len(MAGIC))
        if not head:
            raise SnapshotError("body: a SQLite database file is required")
        if head != MAGIC:
            raise SnapshotError("snapshot: not a SQLite database file")
        yield path, verify(path)
    finally:
        _remove(path)


def verify(path: Path) -> int:
    """The data epoch of the snapshot at `path`; SnapshotError unless it is one."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check != ("ok",):
                raise SnapshotError(f"snapshot: damaged database ({check[0] if check else '?'})")
            for table in (*NEEDED, meta):
                have = {row[0] for row in conn.execute(COLUMNS_QUERY, (table.name,))}
                missing = sorted(set(table.columns.keys()) - have - LATER_COLUMNS)
                if missing:
                    raise SnapshotError(f"snapshot: table {table.name} lacks {', '.join(missing)}")
            row = conn.execute(EPOCH_QUERY).fetchone()
    except sqlite3.DatabaseError as e:
        raise SnapshotError(f"snapshot: not a readable SQLite database ({e})") from None
    try:
        epoch = int(row[0]) if row else 0
    except ValueError:
        epoch = 0
    if epoch < 1:
        raise SnapshotError("snapshot: no data_epoch (not a writer's data)")
    return epoch


def install(engine: Engine, path: Path, epoch: int) -> str:
    """Install the verified snapshot at `path` (of `epoch`) in ONE transaction; the
    caller holds the node's write lock. 'replaced' or 'merged' (module docstring)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("ATTACH DATABASE ? AS snapshot", (str(path),))
        try:
            how = _take_in(conn, epoch)
            conn.commit()
        except DBAPIError as e:  # a row the tables refuse, say: nothing was changed
            conn.rollback()
            raise SnapshotError(f"snapshot: could not be installed ({e.orig})") from None
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.exec_driver_sql("DETACH DATABASE snapshot")
            conn.commit()
    return how


def _take_in(conn: Connection, epoch: int) -> str:
    own = data_epoch_of(conn)
    if epoch < own:
        raise SnapshotError(
            f"snapshot of epoch {epoch} is older than this replica's base ({own})",
            409,
            data_epoch=own,
        )
    how = "replaced" if epoch > own else "merged"
    with search.untriggered(conn) if how == "replaced" else contextlib.nullcontext():
        if how == "replaced":
            for table in (*REPLICATED, outbox_table):
                conn.execute(delete(table))
        present = {row[0] for row in conn.exec_driver_sql(TABLES_QUERY)}
        for table in REPLICATED:
            if table.name in present:
                query = ATTACHED_COLUMNS_QUERY
                columns = {row[0] for row in conn.exec_driver_sql(query, (table.name,))}
                conn.execute(_merge(table, columns))
    if how == "replaced":  # the writer's base: stamped as far as the writer's meta says
        row = conn.exec_driver_sql(STAMPED_QUERY).first()
        set_stamped_base(conn, epoch if row and row[0] == str(epoch) else None)
    set_data_epoch(conn, epoch)
    restored.clear(conn)  # the writer's state: what a restored file lacked is in it
    return how


NEWER = {books: (books.c.id, BOOK_COLUMNS), accounts: (accounts.c.name, ACCOUNT_COLUMNS)}


def _merge(table: Table, present: set[str]):
    """INSERT ... SELECT from the attached snapshot's `table` (whose columns are
    `present`; one it lacks comes in as NULL): books and accounts newer version wins,
    the rest insert-once."""
    names = [c.name for c in table.columns if c.name in present]
    attached = Table(table.name, MetaData(), *(Column(n) for n in names), schema=ATTACHED)
    source = select(*attached.columns).where(true())  # WHERE: SQLite's upsert rule
    stmt = sqlite_insert(table).from_select(names, source)
    if table not in NEWER:
        return stmt.on_conflict_do_nothing()
    key, columns = NEWER[table]
    return stmt.on_conflict_do_update(
        index_elements=[key],
        set_={c: stmt.excluded[c] for c in columns if c in present},
        where=table.c.version < stmt.excluded.version,
    )


def _remove(path: Path) -> None:
    for extra in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
