"""A node's SQLite file made by an older Bazar is brought up to today's tables, rows kept."""

from __future__ import annotations

import sqlite3

import pytest

from catalog.models import db as catalog_db
from common.storage.upgrade import upgrade
from order.models import db as order_db

OLD_ORDERS = """
CREATE TABLE orders (order_id VARCHAR PRIMARY KEY, book_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL, total FLOAT NOT NULL, status VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL);
CREATE INDEX ix_orders_status ON orders (status);
INSERT INTO orders VALUES ('a', 3, 2, 60.0, 'confirmed', '2026-11-01T10:00:00.000+00:00');
"""
OLD_BOOKS = """
CREATE TABLE books (id INTEGER PRIMARY KEY, title VARCHAR NOT NULL, topic VARCHAR NOT NULL,
    cost FLOAT NOT NULL, quantity INTEGER NOT NULL, version INTEGER NOT NULL);
INSERT INTO books VALUES (1, 'T', 'spring', 20.0, 900, 4);
"""


def _columns(path, table) -> dict[str, bool]:
    with sqlite3.connect(path) as conn:
        return {r[1]: bool(r[3]) for r in conn.execute(f"PRAGMA table_info({table})")}


def test_an_old_orders_table_is_rebuilt_with_a_nullable_book_id_and_keeps_its_rows(tmp_path):
    path = tmp_path / "order-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_ORDERS)
    done = upgrade(path, order_db.metadata)
    assert any("orders: rebuilt" in step for step in done)
    assert _columns(path, "orders")["book_id"] is False  # NULL allowed now
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM orders").fetchall() == [
            ("a", 3, 2, 60.0, "confirmed", "2026-11-01T10:00:00.000+00:00", None)  # seq: at start
        ]
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(orders)")}
        assert {"ix_orders_status", "ix_orders_created_at"} <= indexes
        assert not conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '%before_upgrade%'"
        ).fetchall()
    assert upgrade(path, order_db.metadata) == []  # a second start changes nothing


def test_an_orders_table_without_the_reports_index_gets_it(tmp_path):
    path = tmp_path / "order-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_ORDERS.replace("book_id INTEGER NOT NULL", "book_id INTEGER"))
    assert upgrade(path, order_db.metadata) == [
        "orders: added seq",
        "orders: made index ix_orders_created_at",
        "orders: made index ix_orders_seq",
    ]
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE created_at >= '2026-11-01'"
        ).fetchall()
    assert "ix_orders_created_at" in str(plan)
    assert upgrade(path, order_db.metadata) == []


def test_old_idempotency_tables_get_the_age_column_and_its_index(tmp_path):
    path = tmp_path / "catalog-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE order_decisions (order_id VARCHAR PRIMARY KEY, book_id INTEGER,"
            " quantity INTEGER NOT NULL, status VARCHAR NOT NULL, total FLOAT NOT NULL,"
            " items TEXT);"
            "INSERT INTO order_decisions VALUES ('o', 1, 1, 'applied', 5.0, NULL);"
            "CREATE TABLE book_keys (key VARCHAR PRIMARY KEY, book_id INTEGER NOT NULL,"
            " digest VARCHAR NOT NULL);"
        )
    done = upgrade(path, catalog_db.metadata)
    for table in ("order_decisions", "book_keys"):
        assert f"{table}: added age" in done and f"{table}: made index ix_{table}_age" in done
    with sqlite3.connect(path) as conn:  # a record from before retention: no age (counts 0)
        assert conn.execute("SELECT order_id, age FROM order_decisions").fetchall() == [("o", None)]


def test_an_old_books_table_gets_the_soft_delete_columns(tmp_path):
    path = tmp_path / "catalog-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_BOOKS)
    done = upgrade(path, catalog_db.metadata)
    assert "books: added deleted_at" in done and "books: added delete_comment" in done
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, quantity, version, deleted_at FROM books").fetchall() == [
            (1, 900, 4, None)
        ]


def test_a_failed_upgrade_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "order-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_ORDERS)

    def broken(conn, table, have):
        conn.execute(f'ALTER TABLE "{table.name}" RENAME TO "half_done"')
        raise RuntimeError("crash midway")

    monkeypatch.setattr("common.storage.upgrade._rebuild", broken)
    with pytest.raises(RuntimeError):
        upgrade(path, order_db.metadata)
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "orders" in names and "half_done" not in names
    assert _columns(path, "orders")["book_id"] is True


def test_an_old_books_table_gets_the_new_indexes_and_the_import_check_uses_it(tmp_path):
    path = tmp_path / "catalog-1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_BOOKS)
    done = upgrade(path, catalog_db.metadata)
    assert "books: made index ix_books_title_topic" in done
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM books WHERE trim(title) IN ('T', 'U')"
        ).fetchall()
    assert "USING INDEX ix_books_title_topic" in str(plan)
    assert upgrade(path, catalog_db.metadata) == []
