"""A catalog snapshot: made with VACUUM INTO, verified, installed in one transaction."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, insert, select

from catalog import snapshot
from catalog.models import db, outbox_table
from catalog.replica import books, data_epoch_of, decisions, set_data_epoch
from catalog.snapshot import SnapshotError
from common.storage import restored


def catalog_db(path, epoch: int, prices: dict[int, tuple[float, int]], orders=()):
    """A catalog database file: books {id: (cost, version)}, decided order ids, an epoch."""
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    with engine.begin() as conn:
        for book_id, (cost, version) in prices.items():
            conn.execute(
                insert(books).values(
                    id=book_id,
                    title=f"b{book_id}",
                    topic="t",
                    cost=cost,
                    quantity=5,
                    version=version,
                )
            )
        for order_id in orders:
            conn.execute(insert(decisions).values(order_id=order_id, quantity=1, status="applied"))
        conn.execute(insert(outbox_table).values(target="catalog-2", entry="{}", created=0.0))
        set_data_epoch(conn, epoch)
    return engine


def state(engine) -> tuple:
    with engine.connect() as conn:
        rows = conn.execute(select(books.c.id, books.c.cost, books.c.version).order_by(books.c.id))
        ids = conn.execute(select(decisions.c.order_id).order_by(decisions.c.order_id))
        outbox = conn.execute(select(outbox_table.c.seq)).all()
        return [tuple(r) for r in rows], [r[0] for r in ids], len(outbox), data_epoch_of(conn)


def made(path) -> tuple[bytes, int]:
    """A snapshot of the file at `path`, its bytes read from the open file `make` gives."""
    data, epoch = snapshot.make(path)
    with data:
        return data.read(), epoch


def install(engine, data: bytes, folder) -> str:
    with snapshot.received(data, folder) as (path, epoch):
        return snapshot.install(engine, path, epoch)


def test_a_newer_epoch_replaces_the_replicas_data_and_clears_its_outbox(tmp_path):
    catalog_db(tmp_path / "w.sqlite3", 3, {1: (10.0, 4), 2: (20.0, 1)}, ["o-1"])
    replica = catalog_db(tmp_path / "r.sqlite3", 2, {1: (99.0, 9), 3: (30.0, 1)}, ["o-old"])
    data, epoch = made(tmp_path / "w.sqlite3")
    assert epoch == 3
    assert install(replica, data, tmp_path) == "replaced"
    # Its version 9 of book 1 came from a deposed writer's unacknowledged write: gone.
    assert state(replica) == ([(1, 10.0, 4), (2, 20.0, 1)], ["o-1"], 0, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite3", "w.sqlite3"]


def test_the_same_epoch_is_merged_newer_version_wins(tmp_path):
    writer = catalog_db(tmp_path / "w.sqlite3", 3, {1: (10.0, 4), 2: (20.0, 2)}, ["o-1"])
    replica = catalog_db(tmp_path / "r.sqlite3", 3, {1: (11.0, 5), 2: (19.0, 1)}, ["o-2"])
    data, _ = made(tmp_path / "w.sqlite3")
    assert install(replica, data, tmp_path) == "merged"
    # Book 1's version 5 was applied after the snapshot was made: it stays.
    assert state(replica) == ([(1, 11.0, 5), (2, 20.0, 2)], ["o-1", "o-2"], 1, 3)
    assert state(writer)[3] == 3


def test_an_older_epoch_is_refused_and_changes_nothing(tmp_path):
    catalog_db(tmp_path / "w.sqlite3", 2, {1: (10.0, 4)})
    replica = catalog_db(tmp_path / "r.sqlite3", 3, {1: (11.0, 5)})
    before = state(replica)
    data, _ = made(tmp_path / "w.sqlite3")
    with pytest.raises(SnapshotError) as refused:
        install(replica, data, tmp_path)
    assert refused.value.status == 409
    assert state(replica) == before


def test_a_failure_mid_way_leaves_the_old_data(tmp_path):
    path = tmp_path / "w.sqlite3"
    catalog_db(path, 4, {1: (10.0, 4), 2: (20.0, 1)}, ["o-1"])
    with sqlite3.connect(path) as conn:  # a decision the replica's table refuses (NOT NULL)
        conn.execute("PRAGMA ignore_check_constraints = 1")
        conn.execute("CREATE TABLE d2 AS SELECT * FROM order_decisions")
        conn.execute("DROP TABLE order_decisions")
        conn.execute("ALTER TABLE d2 RENAME TO order_decisions")
        conn.execute("INSERT INTO order_decisions (order_id, status) VALUES ('o-bad', 'applied')")
    replica = catalog_db(tmp_path / "r.sqlite3", 2, {1: (99.0, 9)}, ["o-old"])
    before = state(replica)
    data, _ = made(path)
    with pytest.raises(SnapshotError, match="could not be installed"):
        install(replica, data, tmp_path)  # books were already deleted and copied by then
    assert state(replica) == before


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "a SQLite database file is required"),
        (b'{"books": []}', "not a SQLite database"),
        (snapshot.MAGIC + b"\0" * 200, "not a readable SQLite database"),
    ],
)
def test_what_is_not_a_database_is_refused(tmp_path, data, why):
    with pytest.raises(SnapshotError, match=why) as refused:
        install(None, data, tmp_path)
    assert refused.value.status == 400
    assert list(tmp_path.iterdir()) == []  # the received file is gone too


def test_a_database_without_the_catalog_tables_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / "other.sqlite3") as conn:
        conn.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT)")
    data = (tmp_path / "other.sqlite3").read_bytes()
    with pytest.raises(SnapshotError, match="table books lacks"):
        install(None, data, tmp_path)


def test_a_database_without_a_data_epoch_is_refused(tmp_path):
    catalog_db(tmp_path / "w.sqlite3", 0, {1: (10.0, 1)})
    data, epoch = made(tmp_path / "w.sqlite3")
    assert epoch == 0
    with pytest.raises(SnapshotError, match="no data_epoch"):
        install(None, data, tmp_path)


def test_installing_the_writers_snapshot_clears_a_restore_mark(tmp_path):
    """`bazar restore` marks a file; the node is whole once a writer's state is in it."""
    catalog_db(tmp_path / "w.sqlite3", 3, {1: (10.0, 4)}, ["o-1"])
    replica = catalog_db(tmp_path / "r.sqlite3", 0, {1: (9.0, 2)})
    with sqlite3.connect(tmp_path / "r.sqlite3") as conn:
        restored.mark(conn, "2026-12-02T03:00:00+00:00")
    conn.close()
    with replica.connect() as conn:
        assert restored.restored_at(conn) == "2026-12-02T03:00:00+00:00"
    data, _ = made(tmp_path / "w.sqlite3")
    assert install(replica, data, tmp_path) == "replaced"
    with replica.connect() as conn:
        assert restored.restored_at(conn) is None
    assert state(replica) == ([(1, 10.0, 4)], ["o-1"], 0, 3)
