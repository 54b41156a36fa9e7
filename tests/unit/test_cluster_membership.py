"""Membership and Router in-process with a fake client: events, since, retry and failover
counters, and the request rate (the real cluster's page is tests/e2e/test_cluster_view.py)."""

from __future__ import annotations

from common.cluster import Membership, Router
from common.config import Node
from common.http import Unreachable
from common.observe.metrics import BACKEND_FAILOVERS, BACKEND_RETRIES
from frontend.cluster_state import RequestRate, counter_totals


class FakeResponse:
    def __init__(self, status: int, body: dict):
        self.status_code = status
        self._body = body

    def json(self) -> dict:
        return self._body


class FakeClient:
    """Answers per node name: a (status, body) pair, or None for 'unreachable'."""

    def __init__(self, answers: dict):
        self.answers = answers

    def request(self, node, method, path, **kw):
        answer = self.answers[node.name]
        if answer is None:
            raise Unreachable(f"{node.name}: refused")
        return FakeResponse(*answer)


def nodes(*names: str, service: str = "catalog") -> list[Node]:
    return [Node(name, service, f"http://127.0.0.1:{9000 + i}") for i, name in enumerate(names)]


def test_membership_records_changes_and_since():
    client = FakeClient({"c1": (200, {"role": "primary", "lease": {"epoch": 1}}), "c2": None})
    membership = Membership(client, nodes("c1", "c2"), 0.5)
    membership.check_all()
    assert membership.status("c1") == "up" and membership.status("c2") == "down"
    assert membership.since("c1") is not None
    first = [e for e in membership.events() if e.kind == "health"]
    assert first == []  # the first look is not a change
    client.answers["c1"] = None
    client.answers["c2"] = (200, {"role": "primary", "lease": {"epoch": 2}})
    membership.check_all()
    events = membership.events()
    kinds = [(e.kind, e.node, e.before, e.after) for e in events]
    assert kinds[:3] == [
        ("primary", "c2", "c1", "c2"),
        ("health", "c2", "down", "up"),
        ("health", "c1", "up", "down"),
    ]
    assert events[0].epoch == 2
    assert membership.since("c1") >= events[2].at - 0.01
    assert membership.last_health("c2")[0]["lease"] == {"epoch": 2}
    assert membership.primary("catalog") == "c2"


def test_membership_keeps_a_bounded_record():
    client = FakeClient({"c1": (200, {})})
    membership = Membership(client, nodes("c1"), 0.5)
    for i in range(200):
        membership.mark("c1", "down" if i % 2 else "up")
    assert len(membership.events()) == 50


def test_router_counts_retries_and_failovers():
    watched = nodes("r1", "r2", "r3", service="order")
    client = FakeClient({"r1": None, "r2": (503, {}), "r3": (200, {})})
    membership = Membership(client, watched, 0.5)
    for node in watched:
        membership.mark(node.name, "up")
    router = Router(client, membership, patience=1.0)
    retries = counter_totals(BACKEND_RETRIES, "node")
    failovers = counter_totals(BACKEND_FAILOVERS, "node")
    assert router.write("order", "POST", "/buy/1").status_code == 200
    after = counter_totals(BACKEND_RETRIES, "node")
    assert after.get("r1", 0) - retries.get("r1", 0) == 1  # unreachable
    assert after.get("r2", 0) - retries.get("r2", 0) == 1  # 503: try elsewhere
    assert after.get("r3", 0) == retries.get("r3", 0)  # it answered
    assert counter_totals(BACKEND_FAILOVERS, "node").get("r1", 0) == failovers.get("r1", 0) + 1
    before = counter_totals(BACKEND_FAILOVERS)
    client.answers["r1"] = (200, {})
    membership.mark("r1", "up")
    router.write("order", "POST", "/buy/1")  # the first node answers: nothing counted
    assert counter_totals(BACKEND_FAILOVERS) == before


def test_request_rate_is_taken_over_the_last_seconds():
    now, total = [0.0], [0.0]
    rate = RequestRate(lambda: total[0], window=5.0, clock=lambda: now[0])
    for _ in range(20):  # 10 requests a second for 20 s
        now[0] += 1.0
        total[0] += 10
        last = rate.sample()
    assert last["per_second"] == 10.0 and 5.0 <= last["window"] <= 6.0
    now[0] += 1.0  # then nothing for a while
    assert rate.sample()["per_second"] < 10.0
