"""catalog/search.py on a real SQLite file: the FTS5 index kept by triggers, word
search (ranking, prefixes, diacritics, AND, no FTS5 syntax read from `q`), topic pages,
and an index built at start for a database made before it."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, delete, insert, update

from catalog import search, snapshot
from catalog.models import db
from catalog.replica import books, set_data_epoch
from common.ops import backup, check
from common.pages import ID_KEY, RANK_KEY, decode
from common.storage.upgrade import upgrade
from common.web import ApiError
from tests.unit.test_snapshot import made

TITLES = [
    (1, "How to get a good grade in DOS in 20 minutes a day", "distributed systems"),
    (2, "RPCs for Dummies", "distributed systems"),
    (3, "Café Society", "cooking"),
    (4, "Systems of the Pioneer Valley", "spring"),
    (5, "Distributed Cooking", "food"),
]


def make(path, rows=TITLES, indexed=True):
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    if indexed:
        search.install(engine)
    with engine.begin() as conn:
        for book_id, title, topic in rows:
            conn.execute(
                insert(books).values(
                    id=book_id, title=title, topic=topic, cost=1.0, quantity=1, version=1
                )
            )
        set_data_epoch(conn, 1)
    return engine


def words(engine, q, limit=100, after=None):
    found, cursor = search.words_page(engine.url.database, q, limit, after)
    return [hit["id"] for hit in found], cursor


def topic(engine, name, limit=100, after=None):
    with engine.connect() as conn:
        found, cursor = search.topic_page(conn, name, limit, after)
    return [hit["id"] for hit in found], cursor


@pytest.fixture
def engine(tmp_path):
    return make(tmp_path / "c.sqlite3")


def test_a_title_hit_comes_before_a_topic_only_hit(engine):
    # "systems": the title of 4, the topic of 1 and 2 (bm25 counts a document's whole
    # length, so 2's shorter title puts it before 1).
    assert words(engine, "systems")[0] == [4, 2, 1]


def test_words_match_as_prefixes_case_and_accents_aside(engine):
    assert words(engine, "distrib")[0] == [5, 2, 1]
    assert words(engine, "dos")[0] == [1]
    assert words(engine, "CAFE")[0] == [3]
    assert words(engine, "café") == words(engine, "cafe")
    assert words(engine, "caf\u0065\u0301")[0] == [3]  # e + a combining accent


def test_every_word_must_match(engine):
    assert words(engine, "distributed cooking")[0] == [5]
    assert words(engine, "rpc dummies")[0] == [2]
    assert words(engine, "rpc cooking")[0] == []


@pytest.mark.parametrize(
    "q",
    ['"dos', "dos*", "NEAR(dos rpc)", "dos OR rpc", "-dos", "NOT dos", "title:dos",
     "^dos", "dos AND", "(x", "{title}: x", "rpc + for", "'); DROP TABLE books; --"],
)  # fmt: skip
def test_fts5_syntax_in_q_is_never_read_as_such(engine, q):
    found, _ = words(engine, q)  # no error: each word is a quoted prefix
    if q == "dos OR rpc":
        assert found == []  # "or" is a word to match, not an operator
    assert search.match_expression(q).count('"') % 2 == 0


@pytest.mark.parametrize(
    ("q", "expression"),
    [
        ("dos", '"dos"*'),
        ('dos "rpc*', '"dos"* AND "rpc"*'),
        ("NEAR(a b) OR -c", '"NEAR"* AND "a" AND "b" AND "OR"* AND "c"'),
        ("title:x^y", '"title"* AND "x" AND "y"'),
        ("\uff24\uff2f\uff33", '"DOS"*'),  # full-width letters, as NFKC reads them
        ("Crème_brûlée", '"Crème"* AND "brûlée"*'),
        ("x" * 200, f'"{"x" * 200}"*'),
    ],
)
def test_the_query_builder_quotes_every_word_and_ands_them(q, expression):
    assert search.match_expression(q) == expression


def test_a_word_of_one_character_is_a_whole_word_not_a_prefix(engine):
    assert words(engine, "a")[0] == [1]  # "...20 minutes a day": the word "a" itself
    assert words(engine, "d")[0] == []  # not DOS, Dummies, distributed, day...
    assert words(engine, "du")[0] == [2]  # two letters: a prefix again (Dummies)


def test_a_search_that_ranks_too_long_is_a_422_asking_for_more_words(engine, monkeypatch):
    monkeypatch.setattr(search, "PROGRESS_STEPS", 1)  # look at the clock on every step
    with pytest.raises(ApiError) as refused:
        search.words_page(engine.url.database, "systems", 100, None, budget=0.0)
    assert refused.value.status == 422 and "more words" in refused.value.message
    assert set(words(engine, "systems")[0]) == {1, 2, 4}  # the default budget: answered


@pytest.mark.parametrize("q", ["", "   ", '"*"', "-", "___", "!?", "x" * 201])
def test_q_without_a_word_or_too_long_is_a_400(engine, q):
    with pytest.raises(ApiError) as refused:
        words(engine, q)
    assert refused.value.status == 400


def test_withdrawn_books_are_left_out_and_come_back_when_restored(engine):
    with engine.begin() as conn:
        conn.execute(update(books).where(books.c.id == 5).values(deleted_at="2026-12-02"))
    assert words(engine, "distributed")[0] == [2, 1]
    assert topic(engine, "food")[0] == []
    with engine.begin() as conn:
        conn.execute(update(books).where(books.c.id == 5).values(deleted_at=None))
    assert words(engine, "distributed")[0] == [5, 2, 1]


def test_a_rename_moves_the_book_in_the_index_and_a_delete_takes_it_out(engine):
    with engine.begin() as conn:
        conn.execute(update(books).where(books.c.id == 2).values(title="Sockets for All"))
    assert words(engine, "rpc")[0] == []
    assert words(engine, "sockets")[0] == [2]
    with engine.begin() as conn:
        conn.execute(update(books).where(books.c.id == 2).values(quantity=0, cost=2.0))
        conn.execute(delete(books).where(books.c.id == 1))
    assert words(engine, "distributed")[0] == [5, 2]
    assert _integrity(engine)


def test_word_pages_walk_every_hit_once_in_rank_order(tmp_path):
    rows = [(i, f"Tale {i}" + " tale" * (i % 3), "tales") for i in range(1, 31)]
    engine = make(tmp_path / "p.sqlite3", rows)
    whole, cursor = words(engine, "tale", limit=1000)
    assert cursor is None and sorted(whole) == list(range(1, 31))
    walked, after = [], None
    while True:
        found, cursor = search.words_page(engine.url.database, "tale", 7, after)
        walked += [hit["id"] for hit in found]
        if cursor is None:
            break
        after = decode(cursor, RANK_KEY)
    assert walked == whole


def test_topic_pages_walk_by_id_case_aside(tmp_path):
    rows = [(i, f"Book {i}", "Spring" if i % 2 else "other") for i in range(1, 22)]
    engine = make(tmp_path / "t.sqlite3", rows)
    first, cursor = topic(engine, "SPRING", limit=4)
    assert first == [1, 3, 5, 7]
    walked, after = list(first), decode(cursor, ID_KEY)
    while after is not None:
        found, cursor = topic(engine, "spring", 4, after)
        walked += found
        after = decode(cursor, ID_KEY) if cursor else None
    assert walked == list(range(1, 22, 2))
    assert topic(engine, "spring", 11) == (list(range(1, 22, 2)), None)


def test_a_database_made_before_the_index_gets_it_at_start(tmp_path):
    engine = make(tmp_path / "old.sqlite3", indexed=False)
    assert search.install(engine) is True
    assert words(engine, "distributed")[0] == [5, 2, 1]
    assert search.install(engine) is False  # made once
    assert _integrity(engine)


def test_a_table_rebuilt_by_an_upgrade_gets_its_triggers_and_index_back(tmp_path):
    """An older file whose books.delete_comment was NOT NULL: the upgrade rebuilds the
    table (and so drops its triggers); the next start makes them and the index again."""
    path = tmp_path / "up.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE books (id INTEGER PRIMARY KEY, title VARCHAR NOT NULL, "
            "topic VARCHAR NOT NULL, cost FLOAT NOT NULL, quantity INTEGER NOT NULL, "
            "version INTEGER NOT NULL, deleted_at VARCHAR, delete_comment VARCHAR NOT NULL);"
            "INSERT INTO books VALUES (1, 'Old Tale', 'spring', 20.0, 9, 1, NULL, '');"
        )
    engine = create_engine(f"sqlite:///{path}")
    assert search.install(engine) is True
    engine.dispose()
    assert any("books: rebuilt" in step for step in upgrade(path, db.metadata))
    with sqlite3.connect(path) as conn:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert triggers.fetchall() == []  # gone with the old table
    assert search.install(engine) is True
    with engine.begin() as conn:
        conn.execute(insert(books).values(id=9, title="Nine", topic="x", cost=1, quantity=1))
    assert words(engine, "nine")[0] == [9] and words(engine, "old tale")[0] == [1]
    assert topic(engine, "SPRING")[0] == [1]
    assert _integrity(engine)


def test_bazar_check_compares_the_rows_never_the_index_inside(tmp_path):
    """Two replicas with the same rows reached by different paths (one renamed a book
    back and forth): their FTS5 shadow tables differ, `bazar check`'s tables do not."""
    one, two = make(tmp_path / "1.sqlite3"), make(tmp_path / "2.sqlite3")
    for title in ("Interim", TITLES[1][1]):
        with two.begin() as conn:
            conn.execute(update(books).where(books.c.id == 2).values(title=title))
    for table, query in check.QUERIES["catalog"].items():
        assert "fts" not in query
        assert check.read_rows(tmp_path / "1.sqlite3", query) == check.read_rows(
            tmp_path / "2.sqlite3", query
        ), table
    shadow = "SELECT block FROM books_fts_data ORDER BY id"
    assert check.read_rows(tmp_path / "1.sqlite3", shadow) != check.read_rows(
        tmp_path / "2.sqlite3", shadow
    )
    assert words(one, "rpc") == words(two, "rpc")


def test_a_snapshot_installed_keeps_the_index_in_step(tmp_path):
    make(tmp_path / "w.sqlite3", [*TITLES, (6, "Snapshot Stories", "heal")])
    replica = make(tmp_path / "r.sqlite3", [(1, "Old Title", "gone"), (7, "Unacked", "x")])
    data, _ = made(tmp_path / "w.sqlite3")
    with snapshot.received(data, tmp_path) as (path, epoch):
        snapshot.install(replica, path, epoch + 1)  # a newer epoch: replaced
    assert words(replica, "snapshot")[0] == [6]
    assert words(replica, "old")[0] == [] and words(replica, "unacked")[0] == []
    assert words(replica, "distributed")[0] == [5, 2, 1]
    assert _integrity(replica)


def _integrity(engine) -> bool:
    """FTS5's own check that the index matches the rows (raises if not)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO books_fts(books_fts, rank) VALUES ('integrity-check', 1)")
    return True


def test_a_backups_description_names_the_tables_not_the_index(tmp_path):
    make(tmp_path / "c.sqlite3").dispose()
    lines = backup.describe(tmp_path / "c.sqlite3", "catalog")
    assert "books 5" in lines[0] and "fts" not in lines[0], lines


def test_pages_are_read_from_an_index_never_a_scan(engine):
    with engine.connect() as conn:
        for sql, values in [
            (str(search.TOPIC_PAGE), {"topic": "x", "after": 0, "n": 101}),
            (
                "SELECT * FROM books WHERE deleted_at IS NOT NULL AND id > :a ORDER BY id LIMIT 9",
                {"a": 0},
            ),
        ]:
            plan = " ".join(
                row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, values)
            )
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan
