"""Cluster age and compaction of idempotency records (catalog/retention.py), on a plain
SQLite file: the age goes on from the largest in the data, on a fake monotonic clock."""

from __future__ import annotations

from sqlalchemy import create_engine, insert, select

from catalog.models import BookKey, OrderDecision
from catalog.models import db as catalog_db
from catalog.retention import ClusterAge, apply_compact, has_older, largest_age

decisions, keys = OrderDecision.__table__, BookKey.__table__


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def engine_with(tmp_path, ages: list[float | None]):
    engine = create_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    catalog_db.metadata.create_all(engine)
    rows = [
        {"order_id": f"o{i}", "quantity": 1, "status": "applied", "total": 1.0, "age": age}
        for i, age in enumerate(ages)
    ]
    with engine.begin() as conn:
        conn.execute(insert(decisions), rows)
        conn.execute(insert(keys), [{"key": "k", "book_id": 1, "digest": "d", "age": 50.0}])
    return engine


def test_the_age_goes_on_from_the_largest_in_the_data_on_the_monotonic_clock(tmp_path):
    engine, clock = engine_with(tmp_path, [None, 10.0, 120.0]), FakeClock()
    age = ClusterAge(clock)
    with engine.begin() as conn:
        assert age.carry(conn, epoch=3) == 120.0
    clock.now += 30
    assert age.now(3) == 150.0
    assert age.now(4) is None and age.now(0) is None  # not the writer of that epoch


def test_a_compaction_deletes_older_and_unstamped_records_and_keeps_the_age(tmp_path):
    engine = engine_with(tmp_path, [None, 10.0, 120.0])
    with engine.begin() as conn:
        assert has_older(conn, 60.0)
        assert apply_compact(conn, {"before_age": 60.0, "age": 500.0}) == 3  # 2 + the key
        left = conn.execute(select(decisions.c.order_id)).scalars().all()
        assert left == ["o2"] and not conn.execute(select(keys)).all()
        assert not has_older(conn, 60.0)
        assert largest_age(conn) == 500.0  # remembered: carried on with no row that old
        apply_compact(conn, {"before_age": 1.0, "age": 400.0})
        assert largest_age(conn) == 500.0  # never backwards
