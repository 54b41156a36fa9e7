"""Reading book rows inside a transaction; a withdrawn book is absent to customers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from catalog.models import Book
from common.web import ApiError

books = Book.__table__
# Built once, values bound per call (a statement built per call costs its cache key).
BOOK = select(books).where(books.c.id == bindparam("id"))
LISTED = select(books).where(
    books.c.id.in_(bindparam("ids", expanding=True)), books.c.deleted_at.is_(None)
)


STAMP = "bazar.stamp"  # key in Connection.info: the position `CatalogStore._commit` writes at
EPOCH_SHIFT = 32  # a position is epoch << 32 | the holder's commit count in that epoch


def stamp(conn: Connection) -> int:
    """The position the writer stamps on every row it writes in this transaction: its
    epoch and its commit count, so positions grow with every commit of every holder
    (docs/scale.md §6). Set by `CatalogStore._commit` for its transaction only."""
    return conn.info[STAMP]


def next_position(last: int, epoch: int) -> int:
    """The position of the writer of `epoch`'s next commit after `last`."""
    return max(last, epoch << EPOCH_SHIFT) + 1


def now_text() -> str:
    """Now, as the catalog stores times people read (UTC, ms): withdrawals, accounts,
    audit entries. Text of one format, so such times compare as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def any_book(conn: Connection, book_id: int) -> dict:
    """The row, listed or withdrawn (staff and replication see both)."""
    row = conn.execute(BOOK, {"id": book_id}).mappings().first()
    if row is None:
        raise ApiError(404, f"no book with id {book_id}")
    return dict(row)


def listed_book(conn: Connection, book_id: int) -> dict:
    """The row of a book on sale; a withdrawn one is a 404 like an unknown one."""
    row = any_book(conn, book_id)
    if row["deleted_at"] is not None:
        raise ApiError(404, f"no book with id {book_id}")
    return row


def listed_books(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """The rows on sale among `ids`, by id (missing and withdrawn ones are left out)."""
    return {row["id"]: dict(row) for row in conn.execute(LISTED, {"ids": ids}).mappings()}
