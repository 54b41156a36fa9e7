"""The router's calls that fail fast: a write that gives way to a newer primary, and
a call whose every replica is down. The nodes are scripted stand-ins for the HTTP
client (these are unit tests of the routing rules; e2e tests use real nodes)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from common.cluster import Membership, NoReplica, Router
from common.config import Node
from common.http import Reply, Unreachable

OLD = Node("catalog-1", "catalog", "http://127.0.0.1:1")
NEW = Node("catalog-2", "catalog", "http://127.0.0.1:2")


def reply(body: dict) -> Reply:
    return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


class Client:
    """catalog-1 is frozen: its calls hang until released; catalog-2 answers at once."""

    def __init__(self):
        self.release = threading.Event()
        self.health = {OLD.name: (OLD, 1), NEW.name: (None, 1)}  # name -> (role, epoch)
        self.calls: list[str] = []

    def request(self, node, method, path, **kw):
        if path == "/health":
            role, epoch = self.health[node.name]
            body = {"role": "primary" if role else "backup", "lease": {"mine": epoch}}
            return reply(body)
        self.calls.append(node.name)
        if node.name == OLD.name and not self.release.wait(timeout=5):
            raise Unreachable("read timed out", timed_out=True)
        return reply({"by": node.name})


@pytest.fixture
def setup():
    client = Client()
    membership = Membership(client, [OLD, NEW], period=0.05)
    membership.check_all()
    yield client, membership, Router(client, membership, patience=10.0)
    client.release.set()


def test_a_write_to_a_replaced_primary_gives_way_to_the_new_one(setup):
    client, membership, router = setup
    threading.Timer(0.3, lambda: (client.health.update({NEW.name: (NEW, 2)}),)).start()
    threading.Timer(0.35, membership.check_all).start()
    started = time.monotonic()
    answer = router.write("catalog", "PUT", "/update/1", json={})
    assert answer.json() == {"by": NEW.name}
    assert time.monotonic() - started < 1.5  # not the 5 s the frozen call would take
    assert client.calls == [OLD.name, NEW.name]


def test_a_write_does_not_give_way_to_a_primary_of_the_same_epoch(setup):
    client, membership, router = setup
    # A claim of the same epoch while the write waits (a stale one): no reason to leave.
    threading.Timer(0.2, lambda: (client.health.update({NEW.name: (NEW, 1)}),)).start()
    threading.Timer(0.25, membership.check_all).start()
    threading.Timer(0.6, client.release.set).start()
    assert router.write("catalog", "PUT", "/update/1", json={}).json() == {"by": OLD.name}


def test_a_call_with_every_replica_down_fails_at_once():
    client = Client()
    membership = Membership(client, [OLD, NEW], period=0.05)
    membership.check_all()
    for node in (OLD, NEW):
        membership.mark(node.name, "down")
    started = time.monotonic()
    with pytest.raises(NoReplica):
        Router(client, membership, patience=10.0).read("catalog", "GET", "/lookup/1")
    assert time.monotonic() - started < 0.1 and client.calls == []
