"""A backup applies a pushed book row: the narrow update when only stock, price and
position moved, the full upsert otherwise, with the same rows either way."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from catalog.replica import _apply_one, books
from tests.unit.test_search import make, words

ROW = {
    "id": 2,
    "title": "RPCs for Dummies",
    "topic": "distributed systems",
    "cost": 1.0,
    "quantity": 1,
    "version": 1,
}


@pytest.fixture
def engine(tmp_path):
    engine = make(tmp_path / "c.sqlite3")
    with engine.begin() as conn:  # counts statements that set an indexed column
        conn.execute(text("CREATE TABLE set_indexed (n INTEGER)"))
        conn.execute(
            text(
                "CREATE TRIGGER count_set AFTER UPDATE OF title, topic, deleted_at ON books "
                "BEGIN INSERT INTO set_indexed VALUES (new.id); END"
            )
        )
    return engine


def apply(engine, *rows: dict) -> None:
    with engine.begin() as conn:
        _apply_one(conn, {"epoch": 1, "books": list(rows)})


def book(engine, book_id: int) -> dict | None:
    with engine.connect() as conn:
        found = conn.execute(select(books).where(books.c.id == book_id)).mappings().first()
    return dict(found) if found else None


def indexed_sets(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM set_indexed")).scalar()


def test_a_stock_change_sets_no_indexed_column(engine):
    apply(engine, {**ROW, "quantity": 0, "cost": 2.5, "version": 2, "stamp": 9})
    assert book(engine, 2) == {
        **ROW,
        "quantity": 0,
        "cost": 2.5,
        "version": 2,
        "stamp": 9,
        "deleted_at": None,
        "delete_comment": None,
    }
    assert indexed_sets(engine) == 0
    assert words(engine, "dummies")[0] == [2]


def test_a_rename_a_withdrawal_and_a_new_book_take_the_upsert(engine):
    apply(
        engine,
        {**ROW, "title": "Sockets for Dummies", "version": 2},
        {
            **ROW,
            "id": 3,
            "title": "Café Society",
            "topic": "cooking",
            "version": 2,
            "deleted_at": "2026-12-03T00:00:00Z",
        },
        {**ROW, "id": 9, "title": "New Arrival", "topic": "fresh"},
    )
    assert book(engine, 2)["title"] == "Sockets for Dummies"
    assert words(engine, "sockets")[0] == [2] and words(engine, "rpcs")[0] == []
    assert book(engine, 3)["deleted_at"] == "2026-12-03T00:00:00Z"
    assert book(engine, 9)["title"] == "New Arrival"
    assert indexed_sets(engine) == 2  # the rename and the withdrawal; the new book inserted


def test_an_older_or_equal_version_changes_nothing_on_either_path(engine):
    apply(engine, {**ROW, "quantity": 5, "version": 3})
    apply(engine, {**ROW, "quantity": 4, "version": 3})  # the same version again
    apply(engine, {**ROW, "title": "Stale", "quantity": 1, "version": 2})  # an older rename
    assert book(engine, 2)["quantity"] == 5 and book(engine, 2)["title"] == ROW["title"]
