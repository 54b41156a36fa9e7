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


def test_a_delta_is_read_through_the_stamp_index_not_the_whole_key_index(engine):
    """A delta (`since`) of a table with a million rows must not walk them all: the
    plan searches the stamp index; the whole state is still read in key order."""
    from catalog.replica import PARTS, _rows_query

    with engine.connect() as conn:
        for table, _, _ in PARTS:
            delta = _rows_query(table, 5).compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {delta}"))
            assert plan.startswith(f"SEARCH {table.name} USING INDEX"), plan
            assert "(stamp>?)" in plan, plan
            whole = str(_rows_query(table, None))
            assert "ORDER BY" in whole and "WHERE" not in whole


def test_a_delta_holds_the_rows_stamped_since_and_no_other(engine):
    from catalog.replica import _state

    apply(engine, *({**ROW, "id": n} for n in (11, 12, 13)))
    with engine.begin() as conn:
        for n, stamp in ((11, 3), (12, 9), (13, 7)):
            conn.execute(text("UPDATE books SET stamp = :s WHERE id = :n"), {"s": stamp, "n": n})
    with engine.connect() as conn:
        assert [b["id"] for b in _state(conn, 7)["books"]] == [13, 12]  # stamp order
        whole = [b["id"] for b in _state(conn, None)["books"]]
        assert whole == sorted(whole) and {11, 12, 13} <= set(whole)


def test_a_whole_state_past_its_cap_is_refused_and_a_delta_still_answered(engine, monkeypatch):
    """A whole state is built in memory on the event loop: past WHOLE_STATE_ROWS a peer
    answers 413 (the asker heals from a snapshot instead), never the rows."""
    from types import SimpleNamespace

    from flask import Flask

    from catalog import replica as rep
    from common.web import ApiError

    apply(engine, *({**ROW, "id": n} for n in (11, 12, 13)))
    with engine.connect() as conn:
        held = sum(len(rows) for rows in rep._state(conn, None).values())
    replica = rep.CatalogReplica(SimpleNamespace(engine=engine))
    monkeypatch.setattr(rep, "WHOLE_STATE_ROWS", held)
    with Flask(__name__).test_request_context("/sync"):
        assert len(replica.snapshot()["entries"]) == held  # at the cap: answered
    monkeypatch.setattr(rep, "WHOLE_STATE_ROWS", held - 1)
    with Flask(__name__).test_request_context("/sync"), pytest.raises(ApiError) as refused:
        replica.snapshot()
    assert refused.value.status == 413
    with Flask(__name__).test_request_context("/sync?since=1"):
        assert replica.snapshot()["since"] == 1  # a delta is never refused
