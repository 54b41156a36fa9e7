"""`bazar backup` / `bazar restore` on a cluster that is not running: what each refuses
(a clear message and exit code, no traceback) and what a restore leaves in place.
A running node, under load: tests/e2e/test_backup_restore.py."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.cluster import LocalCluster

CATALOG_TABLES = (
    "CREATE TABLE books (id INTEGER PRIMARY KEY, title, topic, cost REAL, quantity INTEGER,"
    " version INTEGER, deleted_at, delete_comment)",
    "CREATE TABLE order_decisions (order_id TEXT PRIMARY KEY, book_id, quantity, status, total,"
    " items)",
    "CREATE TABLE book_keys (key TEXT PRIMARY KEY, book_id, digest)",
    "CREATE TABLE meta (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL)",
    "INSERT INTO books VALUES (1, 'A book', 'topic', 10.0, 5, 3, NULL, NULL)",
    "INSERT INTO meta VALUES ('data_epoch', '4')",
)
ORDER_TABLES = (
    "CREATE TABLE orders (order_id TEXT PRIMARY KEY, book_id, quantity, total, status, created_at)",
    "CREATE TABLE order_items (order_id, book_id, quantity, unit_price)",
)


def make_db(path, statements) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in statements:
            conn.execute(statement)
    conn.close()


@pytest.fixture
def cluster(tmp_path) -> LocalCluster:
    c = LocalCluster(tmp_path / "cluster")  # configured, never started
    c.cluster.data_dir.mkdir(parents=True, exist_ok=True)
    return c


def refused(c: LocalCluster, code: int, *args: str) -> str:
    result = c.bazar(*args, check=False)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr
    return result.stderr


def test_backup_refuses_what_it_cannot_copy(cluster, tmp_path):
    c = cluster
    assert "no node named 'nope'" in refused(c, 2, "backup", "nope", str(tmp_path))
    assert "frontend-1 is a frontend node: it keeps no database" in refused(
        c, 1, "backup", "frontend-1", str(tmp_path)
    )
    assert "catalog-1 has no database file yet" in refused(
        c, 1, "backup", "catalog-1", str(tmp_path)
    )
    make_db(c.cluster.db_path("catalog-1"), CATALOG_TABLES)
    assert "no folder" in refused(c, 1, "backup", "catalog-1", str(tmp_path / "no" / "x.db"))
    live = str(c.cluster.db_path("catalog-2"))
    assert "a node's live database" in refused(c, 1, "backup", "catalog-1", live)


def test_backup_copies_and_restore_puts_it_in_place_keeping_the_old_file(cluster, tmp_path):
    c = cluster
    db = c.cluster.db_path("catalog-1")
    make_db(db, CATALOG_TABLES)
    out = c.bazar("backup", "catalog-1", str(tmp_path / "c1.sqlite3")).stdout
    assert "backed up catalog-1" in out and "integrity ok" in out, out
    assert "books 1" in out and "data epoch 4" in out, out
    with sqlite3.connect(db) as conn:  # the node goes on after its backup
        conn.execute("UPDATE books SET quantity = 4, version = 4")
    conn.close()
    db.chmod(0o640)

    out = c.bazar("restore", "catalog-1", str(tmp_path / "c1.sqlite3")).stdout
    assert "restored catalog-1" in out and "bazar start catalog-1" in out, out
    assert "marked restored" in out, out
    kept = list(db.parent.glob("catalog-1.sqlite3.before-restore-*"))
    assert len(kept) == 1 and f"the file it replaced: {kept[0]}" in out
    assert c.rows("catalog-1", "SELECT quantity, version FROM books") == [(5, 3)]
    assert db.stat().st_mode & 0o777 == 0o640  # the replaced file's mode (and owner)
    assert sqlite3.connect(kept[0]).execute("SELECT quantity FROM books").fetchall() == [(4,)]
    marked = dict(c.rows("catalog-1", "SELECT key, value FROM meta"))
    assert "restored" in marked and marked["data_epoch"] == "4"  # the node resets it on start


def test_restore_refuses_a_file_that_is_not_a_backup_of_that_service(cluster, tmp_path):
    c = cluster
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    orders = tmp_path / "order-1.sqlite3"
    make_db(orders, ORDER_TABLES)
    db = c.cluster.db_path("catalog-1")
    make_db(db, CATALOG_TABLES)
    before = db.read_bytes()

    assert "no backup file" in refused(c, 1, "restore", "catalog-1", str(tmp_path / "gone"))
    assert "not an SQLite database file" in refused(c, 1, "restore", "catalog-1", str(text))
    message = refused(c, 1, "restore", "catalog-1", str(orders))
    assert "is not a backup of a catalog node: no table books" in message, message
    assert "no node named 'nope'" in refused(c, 2, "restore", "nope", str(orders))
    assert "keeps no database" in refused(c, 1, "restore", "frontend-1", str(orders))
    assert db.read_bytes() == before  # nothing changed
    assert not list(db.parent.glob("*.before-restore-*"))
    out = c.bazar("restore", "order-2", str(orders)).stdout  # the right service: taken
    assert "restored order-2" in out and "(it had no database file)" in out, out


def test_a_restored_recovery_node_gives_seqs_past_any_it_gave_before(cluster, tmp_path):
    c = cluster
    backup = tmp_path / "recovery.sqlite3"
    make_db(
        backup,
        (
            "CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, target, entry)",
            "INSERT INTO queue (target, entry) VALUES ('order-2', '{}')",
        ),
    )
    out = c.bazar("restore", "recovery-1", str(backup)).stdout
    assert "restored recovery-1" in out and "queued: order-2 1" in out, out
    assert "updates queued after this backup was taken are not in it" in out
    with sqlite3.connect(c.cluster.db_path("recovery-1")) as conn:
        conn.execute("INSERT INTO queue (target, entry) VALUES ('order-2', '{}')")
        seqs = [seq for (seq,) in conn.execute("SELECT seq FROM queue ORDER BY seq")]
    conn.close()
    assert seqs == [1, 2**40 + 2]
