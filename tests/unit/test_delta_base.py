"""A new holder's base as a delta (docs/scale.md §6): the rows stamped with its own base's
epoch or later. Installed on a replica of that base, it leaves the replica row for row
what the holder holds; any other replica must heal (Behind), never take half a state."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, insert, select, update

from catalog import replica as rep
from catalog.models import db
from catalog.replica import books, decisions, set_data_epoch, set_stamped_base


def catalog(path, data_epoch: int, stamped: int | None):
    """A catalog file of base `data_epoch`: 50 books of the old bases (stamps 0-2)."""
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    with engine.begin() as conn:
        rows = [
            {"id": i, "title": f"b{i}", "topic": "t", "cost": 10.0, "quantity": 5}
            | {"version": 1, "stamp": i % 3 or None}
            for i in range(1, 51)
        ]
        conn.execute(insert(books), rows)
        set_data_epoch(conn, data_epoch)
        set_stamped_base(conn, stamped)
    return engine


def write(engine, book_id: int, cost: float, epoch: int) -> None:
    """A write of the writer of `epoch` (new version, stamped)."""
    with engine.begin() as conn:
        stmt = update(books).where(books.c.id == book_id)
        conn.execute(stmt.values(cost=cost, version=books.c.version + 1, stamp=epoch))


def decide(engine, order_id: str, epoch: int) -> None:
    with engine.begin() as conn:
        values = {"order_id": order_id, "quantity": 1, "status": "applied", "stamp": epoch}
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
        set_data_epoch(conn, entry["epoch"])


def test_a_replica_of_the_same_base_ends_identical_to_the_holder(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    for engine in (holder, replica):  # acknowledged in epoch 3: on both
        write(engine, 5, 55.0, 3)
        decide(engine, "o-both", 3)
    write(holder, 1, 11.0, 3)  # acknowledged in epoch 3, which the replica missed
    write(holder, 5, 56.0, 3)
    decide(holder, "o-1", 3)
    entry = base_of(holder, 4)
    assert "delta" in entry and entry["base_from"] == 3
    # Only what epoch 3 wrote travels, not the 50 books of the older bases.
    assert [row["id"] for row in entry["delta"]["books"]] == [1, 5]
    take(replica, entry)
    assert everything(replica) == everything(holder)
    with replica.connect() as conn:
        assert rep.stamped_base_of(conn) == 4


@pytest.mark.parametrize("lost", ["book", "decision"])
def test_a_replica_with_a_write_the_holder_never_had_is_behind(tmp_path, lost):
    """Never acknowledged, it reached only this replica: a delta cannot say how that row
    stood before, so the replica must heal from the snapshot, and keeps its data till then."""
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    write(holder, 1, 11.0, 3)
    if lost == "book":
        write(replica, 2, 99.0, 3)
    else:
        decide(replica, "o-lost", 3)
    before = everything(replica)
    with pytest.raises(rep.Behind, match="never had"):
        take(replica, base_of(holder, 4))
    assert everything(replica) == before


def test_a_replica_of_an_older_base_is_behind_and_keeps_its_data(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 2, stamped=2)
    write(holder, 1, 11.0, 3)
    before = everything(replica)
    with pytest.raises(rep.Behind):
        take(replica, base_of(holder, 4))
    assert everything(replica) == before


def test_a_replica_whose_base_was_not_stamped_is_behind(tmp_path):
    """Its updates of that epoch may have come from a writer that did not stamp rows."""
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=None)
    with pytest.raises(rep.Behind):
        take(replica, base_of(holder, 4))


def test_a_holder_whose_base_was_not_stamped_sends_its_whole_state(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=None)
    replica = catalog(tmp_path / "r.sqlite3", 1, stamped=None)
    write(replica, 7, 70.0, 1)
    entry = base_of(holder, 4)
    assert "base" in entry and len(entry["base"]["books"]) == 50
    take(replica, entry)
    assert everything(replica) == everything(holder)


def test_a_delta_from_epoch_zero_is_the_whole_state(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 0, stamped=None)
    replica = catalog(tmp_path / "r.sqlite3", 0, stamped=None)
    write(replica, 3, 1.0, 1)
    entry = base_of(holder, 1)
    assert entry["base_from"] == 0 and len(entry["delta"]["books"]) == 50
    take(replica, entry)
    assert everything(replica) == everything(holder)
