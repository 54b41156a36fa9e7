"""Search over the catalog (docs/scale.md §1, §2): topic pages and word search.

Word search uses SQLite FTS5: `books_fts` is an external-content index over
`books` (title, topic). Triggers on `books` keep it in step inside the very
transaction that changes a row, so a replica's applies, a base install, a
snapshot heal and an import all keep it right with no code of their own.
Withdrawn books stay in the index (so `rebuild` and the triggers always
agree) and are left out when reading.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from common.offload import off_loop
from common.pages import cut
from common.web import ApiError
from common.words import words

INDEX = (
    "CREATE VIRTUAL TABLE books_fts USING fts5(title, topic, content='books', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
)
TRIGGERS = {
    "books_fts_insert": "AFTER INSERT ON books BEGIN "
    "INSERT INTO books_fts(rowid, title, topic) VALUES (new.id, new.title, new.topic); END",
    "books_fts_delete": "AFTER DELETE ON books BEGIN "
    "INSERT INTO books_fts(books_fts, rowid, title, topic) "
    "VALUES ('delete', old.id, old.title, old.topic); END",
    # Only a changed title or topic touches the index (a buy's new quantity does not).
    "books_fts_update": "AFTER UPDATE OF title, topic ON books "
    "WHEN old.title IS NOT new.title OR old.topic IS NOT new.topic BEGIN "
    "INSERT INTO books_fts(books_fts, rowid, title, topic) "
    "VALUES ('delete', old.id, old.title, old.topic); "
    "INSERT INTO books_fts(rowid, title, topic) VALUES (new.id, new.title, new.topic); END",
}
# Pages straight from an index: listed books of a topic by id, and staff's withdrawn
# books by id (a few among many: without it, each page would scan the table).
PAGE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS books_listed_by_topic ON books (lower(topic), id) "
    "WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS books_withdrawn ON books (id) WHERE deleted_at IS NOT NULL",
)


def install(engine: Engine) -> bool:
    """Make the search index, its triggers and the pages' indexes if missing; a
    database made before them gets its search index built from the rows. True if it
    was (re)built."""
    with engine.begin() as conn:
        have = {
            name
            for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name = 'books_fts' OR type = 'trigger'"
            )
        }
        missing = [name for name in TRIGGERS if name not in have]
        if "books_fts" not in have:
            _make_index(conn)
        for name in missing:
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {TRIGGERS[name]}")
        for index in PAGE_INDEXES:
            conn.exec_driver_sql(index)
        # Without every trigger, rows may have changed unseen (a table rebuilt by an
        # upgrade loses its triggers): the index is made again from the rows.
        rebuilt = "books_fts" not in have or bool(missing)
        if rebuilt:
            conn.exec_driver_sql("INSERT INTO books_fts(books_fts) VALUES ('rebuild')")
    return rebuilt


@contextlib.contextmanager
def untriggered(conn: Connection) -> Iterator[None]:
    """Inside the caller's transaction: the triggers off while every book is replaced,
    then the index made again from the rows, in one pass (row by row, the triggers
    cost about 7 s per 100,000 books; the rebuild a tenth of a second). A database
    without the index (made by `create_all` alone) is left as it is."""
    indexed = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'books_fts'").first()
    if not indexed:
        yield
        return
    for name in TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    yield
    for name, body in TRIGGERS.items():
        conn.exec_driver_sql(f"CREATE TRIGGER {name} {body}")
    conn.exec_driver_sql("INSERT INTO books_fts(books_fts) VALUES ('rebuild')")


def _make_index(conn: Connection) -> None:
    try:
        conn.exec_driver_sql(INDEX)
    except OperationalError as e:
        if "fts5" not in str(e):
            raise
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} here has no FTS5, which word search needs "
            "(docs/scale.md §2): use a Python whose SQLite has it (python.org and Debian's do)"
        ) from None


# -- topic pages ----------------------------------------------------------------------
TOPIC_PAGE = text(
    "SELECT id, title FROM books WHERE lower(topic) = lower(:topic) AND deleted_at IS NULL "
    "AND id > :after ORDER BY id LIMIT :n"
)


def topic_page(conn: Connection, topic: str, limit: int, after: list | None) -> tuple:
    """Listed books under `topic` (case-insensitive, ASCII letters), by id, past `after`."""
    found = conn.execute(
        TOPIC_PAGE, {"topic": topic, "after": after[0] if after else -1, "n": limit + 1}
    )
    return cut([dict(r) for r in found.mappings()], limit, lambda row: [row["id"]])


# -- word search ----------------------------------------------------------------------
def match_expression(q: str) -> str:
    """An FTS5 query that matches every word of `q` as a token prefix, a word of one
    character as a whole token (`c` finds "C", not every word that starts with c, which
    would rank a good part of the catalog); nothing in `q` is read as FTS5 syntax: each
    word is quoted, and a word (letters and digits) holds no quote. 400 if `q` is not
    1-200 characters with a letter or digit (`common.words`)."""
    return " AND ".join(f'"{word}"' + "*" * (len(word) > 1) for word in words(q))


SEARCH_BUDGET = 2.0  # seconds one word search may rank (the bench at a million: p99 0.12 s)
PROGRESS_STEPS = 10_000  # SQLite VM steps between looks at the clock (well under 1 ms)
WORDS_PAGE = (
    "SELECT b.id, b.title, b.topic, hit.rank FROM "
    "(SELECT rowid AS id, bm25(books_fts, 10.0, 1.0) AS rank "
    " FROM books_fts WHERE books_fts MATCH :match) AS hit "
    "JOIN books AS b ON b.id = hit.id "
    "WHERE b.deleted_at IS NULL AND (hit.rank > :rank OR (hit.rank = :rank AND b.id > :id)) "
    "ORDER BY hit.rank, b.id LIMIT :n"
)


def words_page(
    db_path: str, q: str, limit: int, after: list | None, budget: float = SEARCH_BUDGET
) -> tuple:
    """Listed books whose title or topic hold every word of `q`, best first (a title hit
    weighs ten times a topic hit), ties by id, past the cursor `after` ([rank, id]).

    Ranking scores every match, so a word most books hold takes a while (100 ms at
    100,000 titles, docs/performance.md): the query runs on a connection of its own
    in a real thread (`common.offload`), and the node's lease and replication run on
    meanwhile. One that would take over `budget` seconds is stopped: a 422 asking for
    longer or more words (asking another replica would only cost as much again)."""
    rank, last = after if after else (float("-inf"), -1)
    values = {"match": match_expression(q), "rank": rank, "id": last, "n": limit + 1}
    rows = off_loop(_matches, db_path, values, budget)
    if rows is None:
        raise ApiError(
            422,
            f"q: this search matches too many titles to rank within {budget:g} s; "
            "use longer or more words",
        )
    found, cursor = cut(rows, limit, lambda row: [row[3], row[0]])
    return [{"id": r[0], "title": r[1], "topic": r[2]} for r in found], cursor


def _matches(db_path: str, values: dict, budget: float) -> list[tuple] | None:
    """The page's rows, or None if ranking them took over `budget` seconds."""
    deadline = time.monotonic() + budget
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as conn:
        conn.execute("PRAGMA query_only = 1")
        # Asked every PROGRESS_STEPS steps of SQLite's VM: nonzero interrupts the query.
        conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            return conn.execute(WORDS_PAGE, values).fetchall()
        except sqlite3.OperationalError as e:
            if "interrupted" not in str(e):
                raise
            return None
