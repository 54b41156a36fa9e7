"""`bazar backup NODE DEST` and `bazar restore NODE SRC` (design §3; docs/backup.md).

Both run on the node's host: they read and write `<data_dir>/<node>.sqlite3`
directly. A backup is SQLite's online backup of the running node's file, copied
a few pages per step inside ONE read transaction: in WAL mode a reader never
blocks the node's writes, and the held transaction keeps every step on the
same commit, so the copy is one consistent cut however busy the node is
(without it, the backup API starts over whenever the node commits between two
steps, which under steady buys is forever). The copy is checked
(`PRAGMA integrity_check`) before it is renamed into place.

A restore puts a checked copy of a backup in place of a stopped node's file,
keeping the file it replaces (and its -wal/-shm) beside it, and marks it
restored (`common.storage.restored`): on its next start the node knows its data
is older than what it had acknowledged and catches up from the writer (a
catalog: data epoch 0, so it installs the writer's snapshot before it serves)
or from its peers (an order server) before it counts as whole.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from common.config import Cluster, Node
from common.ops import procs
from common.storage import restored

PAGES_PER_STEP = 256  # 1 MB of 4 KB pages between yields of the source's lock
# What a database of each service must hold (design §5 and the services' own tables).
SHAPES: dict[str, dict[str, set[str]]] = {
    "catalog": {
        "books": {"id", "title", "topic", "cost", "quantity", "version"},
        "order_decisions": {"order_id", "quantity", "status"},
        "book_keys": {"key", "book_id", "digest"},
        "meta": {"key", "value"},
    },
    "order": {
        "orders": {"order_id", "book_id", "quantity", "total", "status", "created_at"},
        "order_items": {"order_id", "book_id", "quantity", "unit_price"},
    },
    "recovery": {"queue": {"seq", "target", "entry"}},
}
MAGIC = b"SQLite format 3\x00"
Prepare = Callable[[sqlite3.Connection], None]
SEQ_JUMP = 2**40  # more queue appends than any recovery node makes between two backups


class BackupError(Exception):
    """Refused or failed: the message says why; nothing was changed."""


def backup(cluster: Cluster, name: str, dest: str) -> list[str]:
    """Copy the node's database to `dest` (a file, or a folder to put a dated file in);
    return the lines to print."""
    node = _node_with_db(cluster, name)
    source = cluster.db_path(node.name)
    if not source.exists():
        raise BackupError(f"{node.name} has no database file yet ({source})")
    target = _destination(cluster, node, Path(dest).expanduser())
    started = datetime.now(UTC)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        _online_copy(source, Path(partial))
        problem = _problem(Path(partial), node.service)
        if problem:
            raise BackupError(f"the copy of {source} failed its check: {problem}")
        _durable_rename(Path(partial), target)
    finally:
        _remove(Path(partial))
    seconds = (datetime.now(UTC) - started).total_seconds()
    return [
        f"backed up {node.name} to {target}",
        f"  {target.stat().st_size} bytes in {seconds:.2f} s, integrity ok, "
        f"taken {_stamp(started)}",
        *(f"  {line}" for line in describe(target, node.service)),
    ]


def restore(cluster: Cluster, name: str, src: str) -> list[str]:
    """Put the backup `src` in place of the stopped node's database; return the lines
    to print."""
    node = _node_with_db(cluster, name)
    pid = procs.running_pid(cluster, node)
    state, _ = procs.health(node)
    if pid or state != "down":
        running = f"pid {pid}" if pid else f"{node.url} answers ({state})"
        raise BackupError(
            f"{node.name} is running ({running}); stop it first: bazar stop {node.name}"
        )
    source = Path(src).expanduser()
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    problem = _problem(source, node.service)
    if problem:
        raise BackupError(f"{source} is not a backup of a {node.service} node: {problem}")
    db = cluster.db_path(node.name)
    if source.resolve() == db.resolve():
        raise BackupError(f"{source} is {node.name}'s own database")
    db.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    fd, partial = tempfile.mkstemp(dir=db.parent, prefix=f".{db.name}.", suffix=".restore")
    os.close(fd)
    try:
        _online_copy(source, Path(partial), _preparation(node.service, _stamp(now)))
        _owned_like(Path(partial), db)
        kept = _set_aside(db, f"before-restore-{now:%Y%m%dT%H%M%SZ}")
        _durable_rename(Path(partial), db)
    finally:
        _remove(Path(partial))
    lines = [f"restored {node.name} from {source}"]
    lines += [f"  {line}" for line in describe(db, node.service)]
    lines.append(f"  the file it replaced: {kept}" if kept else "  (it had no database file)")
    lines.append(f"next: bazar start {node.name}  (it catches up before it serves)")
    if node.service == "recovery":
        lines.append(
            "note: updates queued after this backup was taken are not in it: a replica that "
            "was down or cut off since may lack some; docs/backup.md says how to find and "
            "restore it"
        )
    return lines


def describe(path: Path, service: str) -> list[str]:
    """What a database holds: rows per table, and the catalog's data epoch."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        found = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        # A search index (FTS5, `catalog.search`) and its shadow tables hold no data of
        # their own: left out.
        index = [n for n, sql in found if (sql or "").upper().startswith("CREATE VIRTUAL")]
        tables = [n for n, _ in found if not any(n == v or n.startswith(f"{v}_") for v in index)]
        # table names from the file's own catalogue, quoted: never from input
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608  # nosec B608
        lines = [", ".join(f"{t} {n}" for t, n in counts.items()) or "no tables"]
        if "meta" in counts:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if service == "catalog":
                lines.append(f"data epoch {meta.get('data_epoch', '0')}")
            if restored.KEY in meta:
                lines.append(f"marked restored at {meta[restored.KEY]} (catches up on start)")
        if service == "recovery" and "queue" in counts:
            depth = conn.execute("SELECT target, count(*) FROM queue GROUP BY target").fetchall()
            lines.append("queued: " + (", ".join(f"{t} {n}" for t, n in depth) or "nothing"))
    return lines


def _node_with_db(cluster: Cluster, name: str) -> Node:
    node = cluster.node(name)  # ConfigError naming the config if unknown
    if node.service not in SHAPES:
        raise BackupError(f"{node.name} is a {node.service} node: it keeps no database")
    return node


def _destination(cluster: Cluster, node: Node, dest: Path) -> Path:
    if dest.is_dir():
        dest = dest / f"{node.name}-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.sqlite3"
    if not dest.parent.is_dir():
        raise BackupError(f"no folder {dest.parent} to write the backup in")
    live = {cluster.db_path(n).resolve() for n in cluster.nodes}
    if dest.resolve() in live or dest.resolve().name.endswith(("-wal", "-shm")):
        raise BackupError(f"{dest} is a node's live database: pick another path")
    return dest


def _online_copy(source: Path, target: Path, prepare: Prepare | None = None) -> None:
    """SQLite's online backup of `source` into `target`, in steps, in one read
    transaction of the source (see the module docstring); the copy is a single file
    (rollback journal mode, no -wal). `prepare`: run on the copy in one transaction."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target, isolation_level=None)) as dst,
    ):
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read starts
            src.backup(dst, pages=PAGES_PER_STEP, sleep=0.01)
            src.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise BackupError(f"could not read {source}: {e}") from None
        dst.execute("PRAGMA journal_mode=DELETE")
        if prepare is not None:
            dst.execute("BEGIN IMMEDIATE")
            prepare(dst)
            dst.execute("COMMIT")


def _past_every_seq(conn: sqlite3.Connection) -> None:
    """A recovery node's queue seqs never restart (a late "ack up to N" must not delete
    newer entries): the restored file's next seqs jump past any the lost file gave."""
    moved = conn.execute(
        "UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'queue'", (SEQ_JUMP,)
    ).rowcount
    if not moved:  # nothing was ever queued before the backup
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('queue', ?)", (SEQ_JUMP,))


def _preparation(service: str, when: str) -> Prepare:
    """What a restore does to the copy it puts in place: a replica's is marked restored
    (it catches up on start); a recovery node's queue seqs move on."""
    if service == "recovery":
        return _past_every_seq
    return lambda conn: restored.mark(conn, when)


def _problem(path: Path, service: str) -> str | None:
    """Why `path` is not a sound database of `service`'s shape; None if it is."""
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return "not an SQLite database file"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchone()
            if check != ("ok",):
                return f"damaged ({check[0] if check else '?'})"
            for table, columns in SHAPES[service].items():
                have = {r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
                if not have:
                    return f"no table {table}"
                if columns - have:
                    return f"table {table} lacks {', '.join(sorted(columns - have))}"
    except sqlite3.DatabaseError as e:
        return f"not a readable SQLite database ({e})"
    return None


def _owned_like(path: Path, db: Path) -> None:
    """Give the restored file the replaced file's mode and owner (the folder's owner if
    there was none): the node may run as another user than the operator (root)."""
    if db.exists():
        ref = db.stat()
        os.chmod(path, ref.st_mode & 0o666)
    else:
        ref = db.parent.stat()
        os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, ref.st_uid, ref.st_gid)


def _set_aside(db: Path, suffix: str) -> Path | None:
    """Rename the node's file (and its -wal, -shm) to `<db>.<suffix>`; nothing deleted."""
    kept = db.with_name(f"{db.name}.{suffix}")
    had = db.exists()
    for extra in ("", "-wal", "-shm"):
        path = Path(f"{db}{extra}")
        if path.exists():
            path.rename(Path(f"{kept}{extra}"))
    _fsync_dir(db.parent)
    return kept if had else None


def _durable_rename(partial: Path, target: Path) -> None:
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    partial.replace(target)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    for extra in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
