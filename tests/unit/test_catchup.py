"""A replica Behind a new holder's delta base catches up on rows (catalog.catchup): it ends
row for row what the holder holds, whether it lacked commits or held writes the holder
never had; a holder whose base came from elsewhere, or too many rows, send it to the
snapshot instead."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from catalog import catchup
from catalog import replica as rep
from catalog.models import outbox_table
from common.web import ApiError
from tests.unit.test_delta_base import at, both, catalog, decide, everything, write


def took_over(holder, epoch: int) -> None:
    """The holder's takeover as far as its data goes (CatalogReplica.take_over)."""
    with holder.begin() as conn:
        rep._set_meta(conn, rep.BASE_FROM, rep.data_epoch_of(conn))
        rep.set_data_epoch(conn, epoch)
        rep.set_stamped_base(conn, epoch)


def catch_up(replica, holder, position: int, limit: int = catchup.LIMIT) -> int:
    with replica.connect() as conn:
        asked = catchup.question(conn, 3, position)
    with holder.connect() as conn:
        answer = catchup.answer(conn, asked, limit)
    with replica.begin() as conn:
        return catchup.install(conn, asked, answer)


@pytest.mark.parametrize("fault", ["lacks commits", "extra writes"])
def test_a_replica_ends_what_the_holder_is(tmp_path, fault):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    both(holder, replica, lambda e: write(e, 1, 11.0, at(3, 1)))
    if fault == "lacks commits":
        write(holder, 2, 12.0, at(3, 2))
        decide(holder, "o-2", at(3, 2))
    else:  # never acknowledged: reached only the replica
        write(replica, 2, 99.0, at(3, 2))
        decide(replica, "o-lost", at(3, 2))
    with holder.connect() as conn:
        position = rep.position_of(conn)
    took_over(holder, 4)
    write(holder, 7, 70.0, at(4, 1))  # the new holder's first commit
    with replica.begin() as conn:  # staged when it was the holder: superseded
        conn.execute(insert(outbox_table).values(target="catalog-2", entry="{}", created=0.0))
    assert catch_up(replica, holder, position) == 4
    assert everything(replica) == everything(holder)
    with replica.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_table)).scalar() == 0
    with replica.connect() as conn:
        assert rep.stamped_base_of(conn) == 4


def test_a_holder_whose_base_came_from_another_base_refuses(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    write(holder, 1, 11.0, at(3, 1))
    took_over(holder, 4)
    took_over(holder, 5)  # base 5 made from base 4: the replica of base 3 needs the snapshot
    with pytest.raises(ApiError) as refused:
        catch_up(replica, holder, at(3, 1))
    assert refused.value.status == 409


def test_too_many_rows_refuse(tmp_path):
    holder = catalog(tmp_path / "h.sqlite3", 3, stamped=3)
    replica = catalog(tmp_path / "r.sqlite3", 3, stamped=3)
    both(holder, replica, lambda e: write(e, 1, 11.0, at(3, 1)))
    took_over(holder, 4)
    for n, book in enumerate(range(2, 12), start=1):
        write(holder, book, 1.0, at(4, n))
    with pytest.raises(ApiError) as refused:
        catch_up(replica, holder, at(3, 1), limit=5)
    assert refused.value.status == 413


def test_a_replica_of_another_base_does_not_ask(tmp_path):
    replica = catalog(tmp_path / "r.sqlite3", 2, stamped=2)
    with replica.connect() as conn:
        assert catchup.question(conn, 3, at(3, 1)) is None
