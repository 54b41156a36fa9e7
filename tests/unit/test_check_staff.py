"""`bazar check` compares the staff accounts and the audit trail of every catalog replica
(docs/staff.md), on SQLite files made here: a difference is named down to the row and
column, and a replica file from before those tables is a difference, not a crash."""

from __future__ import annotations

import sqlite3

import pytest

from common.ops.check import compare
from tests.support.configs import config_text, load_config

TABLES = """
CREATE TABLE staff_accounts (name TEXT PRIMARY KEY, role TEXT, password_hash TEXT,
    created_at TEXT, disabled_at TEXT NULL, version INTEGER);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, write_id TEXT UNIQUE, at TEXT, staff TEXT,
    role TEXT, action TEXT, book_id INTEGER NULL, before TEXT, after TEXT, request_id TEXT);
"""
OLDER = """
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, topic TEXT, cost REAL,
    quantity INTEGER, version INTEGER, deleted_at TEXT, delete_comment TEXT);
CREATE TABLE order_decisions (order_id TEXT PRIMARY KEY, book_id INTEGER, quantity INTEGER,
    status TEXT, total TEXT, items TEXT);
CREATE TABLE book_keys (key TEXT PRIMARY KEY, book_id INTEGER, digest TEXT);
"""
ACCOUNTS = [
    ("alice", "clerk", "$argon2id$v=19$m=19456,t=2,p=1$a$b", "2026-01-01T00:00:00.000Z", None, 1),
    ("bob", "manager", "$argon2id$v=19$m=19456,t=2,p=1$c$d", "2026-01-01T00:00:01.000Z", None, 1),
]
ENTRIES = [
    (1, "w1", "2026-01-01T00:00:00.000Z", "admin", "manager", "staff-add", None, "null",
     '{"name": "alice", "role": "clerk", "disabled": false}', "r1"),
    (2, "w2", "2026-01-01T00:00:02.000Z", "bob", "manager", "price", 1, '{"cost": 50.0}',
     '{"cost": 45.0}', "r2"),
]  # fmt: skip


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    c = load_config(tmp_path, monkeypatch, config_text(catalogs=2))
    c.data_dir.mkdir(parents=True)
    for node in c.of("catalog"):
        make(c.db_path(node.name), staff=True)
    for node in c.of("order"):  # one order replica: nothing to differ
        conn = sqlite3.connect(c.db_path(node.name))
        conn.executescript(
            "CREATE TABLE orders (order_id TEXT, book_id INTEGER, quantity INTEGER, total TEXT,"
            " status TEXT, created_at TEXT);"
            "CREATE TABLE order_items (order_id TEXT, book_id INTEGER, quantity INTEGER,"
            " unit_price TEXT);"
        )
        conn.close()
    return c


def make(path, staff: bool) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLDER + (TABLES if staff else ""))
    if staff:
        conn.executemany("INSERT INTO staff_accounts VALUES (?, ?, ?, ?, ?, ?)", ACCOUNTS)
        conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ENTRIES)
    conn.commit()
    conn.close()


def change(cluster, node: str, sql: str) -> None:
    conn = sqlite3.connect(cluster.db_path(node))
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_identical_accounts_and_trails_are_the_same(cluster):
    ok, lines = compare(cluster)
    assert ok, lines
    assert "same   catalog staff_accounts: 2 rows on catalog-1, catalog-2" in lines
    assert "same   catalog audit_log: 2 rows on catalog-1, catalog-2" in lines


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE staff_accounts SET role = 'manager' WHERE name = 'alice'",
         "name 'alice': role 'manager' vs 'clerk'"),
        ("UPDATE staff_accounts SET disabled_at = '2026-01-02T00:00:00.000Z', version = 2 "
         "WHERE name = 'bob'",
         "name 'bob': disabled_at '2026-01-02T00:00:00.000Z' vs None, version 2 vs 1"),
        ("UPDATE staff_accounts SET password_hash = 'x' WHERE name = 'bob'",
         "name 'bob': password_hash differs (catalog-2 vs catalog-1)"),
        ("DELETE FROM staff_accounts WHERE name = 'alice'", "name 'alice' only on catalog-1"),
    ],
)  # fmt: skip
def test_an_account_that_differs_is_named_with_its_columns(cluster, sql, named):
    change(cluster, "catalog-2", sql)
    ok, lines = compare(cluster)
    assert not ok
    differ = [line for line in lines if line.startswith("DIFFER catalog staff_accounts")]
    assert len(differ) == 1, lines
    assert differ[0].startswith("DIFFER catalog staff_accounts: catalog-2 vs catalog-1")
    assert named in differ[0]
    assert "same   catalog audit_log: 2 rows on catalog-1, catalog-2" in lines


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE audit_log SET after = '{\"cost\": 44.0}' WHERE id = 2",
         "id 2: after '{\"cost\": 44.0}' vs '{\"cost\": 45.0}'"),
        ("UPDATE audit_log SET request_id = 'other' WHERE id = 1",
         "id 1: request_id 'other' vs 'r1'"),
        ("UPDATE audit_log SET book_id = NULL WHERE id = 2", "id 2: book_id None vs 1"),
        ("INSERT INTO audit_log VALUES (3, 'w3', 'at', 'bob', 'manager', 'withdraw', 1, "
         "'{}', '{}', 'r3')", "id 3 only on catalog-2"),
        ("DELETE FROM audit_log WHERE id = 1", "id 1 only on catalog-1"),
    ],
)  # fmt: skip
def test_a_trail_that_differs_is_named_with_its_columns(cluster, sql, named):
    change(cluster, "catalog-2", sql)
    ok, lines = compare(cluster)
    assert not ok
    differ = [line for line in lines if line.startswith("DIFFER catalog audit_log")]
    assert len(differ) == 1, lines
    assert named in differ[0], differ[0]


def test_a_replica_file_from_before_the_staff_tables_is_a_difference(cluster):
    path = cluster.db_path("catalog-2")
    path.unlink()
    make(path, staff=False)
    ok, lines = compare(cluster)
    assert not ok
    assert (
        "MISSING catalog staff_accounts: unreadable on catalog-2 "
        "(no such table: staff_accounts)" in lines
    )
    assert "MISSING catalog audit_log: unreadable on catalog-2 (no such table: audit_log)" in lines
    assert "same   catalog books: 0 rows on catalog-1, catalog-2" in lines
