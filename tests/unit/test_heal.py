"""The Healer: asks the lease holder for its snapshot, backs off, and says why it is behind."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

from catalog import _status
from catalog.heal import FIRST_DELAY, MAX_DELAY, Healer
from common.cluster import Membership
from common.config import Node, Tuning
from common.http import Reply, Unreachable
from common.lease.fence import EpochFence
from tests.unit.test_snapshot import catalog_db, made, state

ME, WRITER = "catalog-1", "catalog-2"


class Client:
    """The writer as the healer's client sees it: an answer, or unreachable (None)."""

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def request(self, node, method, path, **kw):
        self.calls.append((node.name, path))
        if self.answer is None:
            raise Unreachable(f"{node.name}: refused")
        return self.answer

    def download(self, node, path, into, timeout=None):
        """As InternalClient.download: a 200's body goes into the file."""
        answer = self.request(node, "GET", path)
        if answer.status_code != 200:
            return answer
        into.write(answer.content)
        return Reply(200, answer.headers, b"")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_store(tmp_path, client, holder=WRITER, data_epoch=1, engine=None):
    nodes = {
        n: Node(n, "catalog", f"http://127.0.0.1:{9000 + i}") for i, n in enumerate((ME, WRITER))
    }
    cluster = SimpleNamespace(
        tuning=Tuning(),
        node=nodes.__getitem__,
        db_path=lambda name: tmp_path / f"{name}.sqlite3",
    )
    ctx = SimpleNamespace(
        cluster=cluster, node=nodes[ME], client=client, write_lock=threading.RLock()
    )
    group = SimpleNamespace(view=lambda: SimpleNamespace(holder=holder))
    role = SimpleNamespace(group=group, fence=EpochFence(), epoch=0)
    return SimpleNamespace(ctx=ctx, role=role, engine=engine, data_epoch=data_epoch)


def test_an_unreachable_writer_leaves_it_behind_and_tries_are_spaced_out(tmp_path):
    client, clock = Client(None), Clock()
    healer = Healer(fake_store(tmp_path, client), clock)
    assert healer.reason is None
    assert healer.heal(2, "update of epoch 2 before its base (have 1)") is False
    assert "update of epoch 2" in healer.reason and "unreachable" in healer.reason
    assert _status(SimpleNamespace(serving=lambda: False), healer) == "behind"
    assert healer.heal(2, "again") is False  # within the delay: the writer is not asked
    assert len(client.calls) == 1
    wait = FIRST_DELAY
    for _ in range(6):  # 0.25, 0.5, 1, 2, then MAX_DELAY between tries
        calls = len(client.calls)
        clock.now += wait - 0.01
        assert healer.heal(2, "again") is False and len(client.calls) == calls
        clock.now += 0.01
        assert healer.heal(2, "again") is False and len(client.calls) == calls + 1
        wait = min(MAX_DELAY, wait * 2)
    assert wait == MAX_DELAY
    assert healer.failed == 7 and healer.installed == 0


def test_no_writer_known_or_itself_the_holder_is_no_one_to_ask(tmp_path):
    for holder in (None, ME):
        client = Client(None)
        healer = Healer(fake_store(tmp_path, client, holder=holder), Clock())
        assert healer.heal(3, "lost") is False
        assert client.calls == [] and "no writer to ask" in healer.reason


def test_a_writer_that_is_not_the_primary_yet_is_not_healed_from(tmp_path):
    client = Client(Reply(421, {}, b'{"message": "not the primary"}', node=WRITER))
    healer = Healer(fake_store(tmp_path, client), Clock())
    assert healer.heal(2, "lost") is False
    assert "answered 421: not the primary" in healer.reason


def test_the_writers_snapshot_is_installed_and_the_reason_goes(tmp_path):
    catalog_db(tmp_path / f"{WRITER}.sqlite3", 2, {1: (77.0, 3)}, ["o-1"])
    data, _ = made(tmp_path / f"{WRITER}.sqlite3")
    engine = catalog_db(tmp_path / f"{ME}.sqlite3", 1, {1: (10.0, 1)})
    client = Client(None)
    store = fake_store(tmp_path, client, engine=engine)
    clock = Clock()
    healer = Healer(store, clock)
    assert healer.heal(2, "lost") is False
    client.answer = Reply(200, {}, data, node=WRITER)
    clock.now += MAX_DELAY
    assert healer.heal(2, "lost") is True
    assert state(engine) == ([(1, 77.0, 3)], ["o-1"], 0, 2)
    assert store.data_epoch == 2 and healer.reason is None and healer.installed == 1
    assert _status(SimpleNamespace(serving=lambda: False), healer) == "stale"
    assert healer.heal(2, "again") is True and len(client.calls) == 2  # nothing to do


def test_a_snapshot_older_than_the_epoch_needed_is_refused(tmp_path):
    catalog_db(tmp_path / f"{WRITER}.sqlite3", 2, {1: (77.0, 3)})
    data, _ = made(tmp_path / f"{WRITER}.sqlite3")
    engine = catalog_db(tmp_path / f"{ME}.sqlite3", 1, {1: (10.0, 1)})
    store = fake_store(tmp_path, Client(Reply(200, {}, data, node=WRITER)), engine=engine)
    healer = Healer(store, Clock())
    assert healer.heal(3, "lost") is False
    assert "epoch 3 is needed" in healer.reason
    assert state(engine)[3] == 1


def test_membership_shows_a_behind_replica_as_behind():
    body = {"status": "behind", "reason": "update of epoch 2 before its base (have 1)"}
    client = SimpleNamespace(
        request=lambda node, *a, **kw: Reply(503, {}, json.dumps(body).encode())
    )
    node = Node(ME, "catalog", "http://127.0.0.1:9000")
    membership = Membership(client, [node], 0.5)
    membership.check_all()
    assert membership.status(ME) == "behind"
    assert membership.last_health(ME)[0]["reason"] == body["reason"]
