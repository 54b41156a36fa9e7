"""A new holder's base as a delta (docs/scale.md §6): its rows at the position it reached
(its last commit). A replica of the same base at that position ends row for row what the
holder holds; any other replica is Behind (it heals), never takes half a state."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, select, update

from catalog import replica as rep
from catalog.models import db
from catalog.replica import books, decisions, set_data_epoch, set_stamped_base


def at(epoch: int, commit: int) -> int:
    """The position of a writer's commit (catalog.rows.next_position)."""
    return epoch << 32 | commit


def catalog(path, data_epoch: int, stamped: int | None):
    """A catalog file of base `data_epoch`: 50 books written in older epochs."""
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    with engine.begin() as conn:
        rows = [
            {"id": i, "title": f"b{i}", "topic": "t", "cost": 10.0, "quantity": 5}
            | {"version": 1, "stamp": at(i % 3, i) if i % 3 else None}
            for i in range(1, 51)
        ]
        conn.execute(insert(books), rows)
        set_data_epoch(conn, data_epoch)
        set_stamped_base(conn, stamped)
    return engine


def write(engine, book_id: int, cost: float, position: int) -> None:
    """A commit of the writer (new version, stamped with its position)."""
    with engine.begin() as conn:
        stmt = update(books).where(books.c.id == book_id)
        conn.execute(stmt.values(cost=cost, version=books.c.version + 1, stamp=position))


def decide(engine, order_id: str, position: int) -> None:
    with engine.begin() as conn:
        values = {"order_id": order_id, "quantity": 1, "status": "applied", "stamp": position}
        conn.execute(insert(decisions).values(**values))


def everything(engine) -> tuple:
    with engine.connect() as conn:
        return (
            conn.execute(select(books).order_by(books.c.id)).all(),
            conn.execute(select(decisions).order_by(decisions.c.order_id)).all(),
        )


def base_of(holder, epoch: int) -> dict:
    with holder.begin() as conn:
        return rep._base_entry(conn, epoch)


def take(engine, entry: dict) -> None:
    with engine.begin() as conn:
        rep._take_base(conn, entry, rep.data_epoch_of(conn))


def both(holder, replica, step) -> None:
    for engine in (holder, replica):
        step(engine)


def test_a_replica_at_the_holders_position_ends_identical_to_it(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    both(holder, replica, lambda e: write(e, 5, 55.0, at(3, 1)))
    both(holder, replica, lambda e: decide(e, "o-both", at(3, 2)))
    # The last commit wrote a book and a decision; the replica got the book only.
    both(holder, replica, lambda e: write(e, 1, 11.0, at(3, 3)))
    decide(holder, "o-last", at(3, 3))
    entry = base_of(holder, 4)
    assert "delta" in entry and entry["base_from"] == 3 and entry["position"] == at(3, 3)
    # Only the last commit travels, not the 50 books nor the earlier commits.
    assert [row["id"] for row in entry["delta"]["books"]] == [1]
    assert [row["order_id"] for row in entry["delta"]["decisions"]] == ["o-last"]
    take(replica, entry)
    assert everything(replica) == everything(holder)
    with replica.connect() as conn:
        assert rep.stamped_base_of(conn) == 4 and rep.data_epoch_of(conn) == 4


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("missed", "lacks commits"),  # a commit the holder has and it lacks
        ("extra book", "never had"),  # a write never acknowledged that reached only it
        ("extra decision", "never had"),
    ],
)
def test_a_replica_at_another_position_is_behind_and_keeps_its_data(tmp_path, fault, why):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    both(holder, replica, lambda e: write(e, 1, 11.0, at(3, 1)))
    if fault == "missed":
        write(holder, 2, 12.0, at(3, 2))
    elif fault == "extra book":
        write(replica, 2, 99.0, at(3, 2))
    else:
        decide(replica, "o-lost", at(3, 2))
    before = everything(replica)
    with pytest.raises(rep.Behind, match=why):
        take(replica, base_of(holder, 4))
    assert everything(replica) == before


def test_a_replica_of_an_older_base_is_behind(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 2, stamped=2)
    with pytest.raises(rep.Behind, match="delta of base 3"):
        take(replica, base_of(holder, 4))


def test_a_replica_whose_base_was_not_stamped_is_behind(tmp_path):
    """Its commits of that epoch may have come from a writer that did not stamp rows."""
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=None)
    with pytest.raises(rep.Behind):
        take(replica, base_of(holder, 4))


def test_a_holder_whose_base_was_not_stamped_sends_its_whole_state(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=None)
    replica = catalog(tmp_path / "r.sqlite3", 1, stamped=None)
    write(replica, 7, 70.0, at(1, 9))
    entry = base_of(holder, 4)
    assert "base" in entry and len(entry["base"]["books"]) == 50
    take(replica, entry)
    assert everything(replica) == everything(holder)


def test_the_first_base_is_the_whole_state(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 0, stamped=None)
    replica = catalog(tmp_path / "r.sqlite3", 0, stamped=None)
    write(replica, 3, 1.0, at(1, 1))
    entry = base_of(holder, 1)
    assert entry["base_from"] == 0 and len(entry["delta"]["books"]) == 50
    take(replica, entry)
    assert everything(replica) == everything(holder)
