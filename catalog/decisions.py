"""The catalog's decision on an order id: all of its lines taken, or none (design §7 rule 4).

Runs inside the writer's transaction, under its write lock: every line is
checked, then every line decremented, and the decision is recorded with its
exact lines (`unit_price` = the cost at decision time), so the same order id
never decrements twice and a retry gets the first answer. A single buy is
an order of one line.
"""

from __future__ import annotations

import json

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from catalog.models import OrderDecision
from catalog.rows import BOOK, any_book, books, stamp
from common import money
from common.storage.raw import Raw
from common.web import ApiError

decisions = OrderDecision.__table__
# Built once, values bound per call (see catalog.rows).
FIND = select(decisions).where(decisions.c.order_id == bindparam("order_id"))
RECORD = insert(decisions)
DECISION_COLUMNS = ["order_id", "book_id", "quantity", "status", "total", "items", "stamp", "age"]
DECREMENT = (
    update(books)
    .where(books.c.id == bindparam("book"), books.c.quantity >= bindparam("wanted"))
    .values(
        quantity=books.c.quantity - bindparam("wanted"),
        version=books.c.version + 1,
        stamp=bindparam("stamp"),
    )
    .returning(*books.c)  # the row as it is now: no second query to read it back
)
# The same, on sqlite3's cursor: what a buy runs at the primary (common.storage.raw).
RAW_FIND, RAW_BOOK, RAW_DECREMENT = Raw(FIND), Raw(BOOK), Raw(DECREMENT)
RAW_RECORD = Raw(RECORD, DECISION_COLUMNS)


def take(
    conn: Connection, order_id: str, lines: list[dict], age: float | None = None
) -> tuple[dict, dict]:
    """Decide `order_id`: (outcome, replicated entry). 404 names unknown or withdrawn books.
    `age`: the cluster age now, stamped on the decision (`catalog.retention`)."""
    decided = find(conn, order_id)
    if decided:
        return outcome(decided), again(conn, decided)
    wanted = [line["book_id"] for line in lines]
    found = _listed(conn, wanted)
    unknown = [book_id for book_id in wanted if book_id not in found]
    if unknown:
        raise ApiError(404, f"no book with id {_names(unknown)}", books=unknown)
    short = [
        line["book_id"] for line in lines if found[line["book_id"]]["quantity"] < line["quantity"]
    ]
    priced = [
        {**_line(line), "unit_price": money.text(found[line["book_id"]]["cost"])} for line in lines
    ]
    if short:
        record = _record(conn, order_id, priced, "rejected", short, age)
        RAW_RECORD.run(conn, record)
        return outcome(record), {"order": record}
    changed = [_decrement(conn, line) for line in lines]
    record = _record(conn, order_id, priced, "applied", age=age)
    RAW_RECORD.run(conn, record)
    return outcome(record), {"order": record, "books": changed}


def fence(
    conn: Connection, order_id: str, lines: list[dict], age: float | None = None
) -> tuple[dict, dict]:
    """The outcome of `order_id`; undecided, it is recorded 'aborted' so it never applies."""
    decided = find(conn, order_id)
    if decided:
        return outcome(decided), again(conn, decided)
    aborted = [{**_line(line), "unit_price": "0.00"} for line in lines]
    record = _record(conn, order_id, aborted, "aborted", age=age)
    conn.execute(RECORD, record)
    return outcome(record), {"order": record}


def again(conn: Connection, decided: dict) -> dict:
    """A decision asked for again: pushed again with its books, so it is surely delivered."""
    ids = [line["book_id"] for line in lines_of(decided)]
    rows = [row for row in (_maybe(conn, book_id) for book_id in ids) if row]
    return {"order": decided, "books": rows}


def outcome(record: dict) -> dict:
    lines = lines_of(record)
    applied = record["status"] == "applied"
    return {
        "outcome": record["status"],
        "total": money.text(money.total(lines) if applied else 0),
        "book_id": record["book_id"],
        "quantity": record["quantity"],
        "items": [_priced(line) for line in lines],
        "short": [line["book_id"] for line in lines if line.get("short")],
    }


def lines_of(record: dict) -> list[dict]:
    """A decision's lines; a row from before multi-book orders had one, priced by its total."""
    if record.get("items"):
        return json.loads(record["items"])
    unit = money.exact(record["total"]) / record["quantity"] if record["total"] else 0
    line = {"book_id": record["book_id"], "quantity": record["quantity"]}
    return [{**line, "unit_price": money.text(unit)}]


def _record(
    conn: Connection, order_id: str, priced: list[dict], status: str, short=(), age=None
) -> dict:
    lines = [{**line, "short": True} if line["book_id"] in short else line for line in priced]
    return {
        "order_id": order_id,
        "book_id": priced[0]["book_id"] if len(priced) == 1 else None,
        "quantity": sum(line["quantity"] for line in priced),
        "status": status,
        "total": float(money.total(priced)) if status == "applied" else 0.0,
        "items": json.dumps(lines, separators=(",", ":")),
        "stamp": stamp(conn),
        "age": age,
    }


def _decrement(conn: Connection, line: dict) -> dict:
    wanted = {"book": line["book_id"], "wanted": line["quantity"], "stamp": stamp(conn)}
    row = RAW_DECREMENT.first(conn, wanted)
    if row is None:  # checked above under the same lock: cannot happen; never half-apply
        raise RuntimeError(f"stock of book {line['book_id']} changed under the write lock")
    return row


def _listed(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """The rows on sale among `ids`, by id (as catalog.rows.listed_books; one id each
    on the raw cursor costs less than one expanding IN through Core)."""
    found = (RAW_BOOK.first(conn, {"id": book_id}) for book_id in dict.fromkeys(ids))
    return {row["id"]: row for row in found if row and row["deleted_at"] is None}


def find(conn: Connection, order_id: str) -> dict | None:
    return RAW_FIND.first(conn, {"order_id": order_id})


def _maybe(conn: Connection, book_id: int) -> dict | None:
    try:
        return any_book(conn, book_id)
    except ApiError:
        return None


def _line(line: dict) -> dict:
    return {"book_id": line["book_id"], "quantity": line["quantity"]}


def _priced(line: dict) -> dict:
    return {**_line(line), "unit_price": line["unit_price"]}


def _names(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)
