"""The front-end's /cluster page and /cluster.json: a killed node shows as down within 3 s.

The first tests drive Membership and Router in-process with a fake client
(events, since, retry and failover counters); the rest run a real cluster
with the default health period (0.5 s) and kill nodes with SIGKILL.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from common.cluster import Membership, Router
from common.config import Node
from common.http import Unreachable
from common.observe.metrics import BACKEND_FAILOVERS, BACKEND_RETRIES
from frontend.cluster_schemas import ClusterViewSchema
from frontend.cluster_state import RequestRate, counter_totals
from frontend.cluster_view import PAGE_CSP
from tests.support.cluster import LocalCluster, wait_until

DOWN_WITHIN = 3.0  # seconds from SIGKILL to `down` on the page


# -- in-process: Membership's record and the router's counters --------------------------
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


# -- a real cluster ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The default health period: what an operator would see."""
    cluster = LocalCluster(tmp_path_factory.mktemp("view"), tuning={"health_period": 0.5})
    cluster.up()
    yield cluster
    cluster.discard()


def view(cluster) -> dict:
    response = cluster.api.get("/cluster.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def row(snapshot: dict, name: str) -> dict:
    return next(n for n in snapshot["nodes"] if n["name"] == name)


def test_every_node_is_listed_with_primary_and_epoch(cluster):
    wait_until(lambda: all(n["health"] == "up" for n in view(cluster)["nodes"]), 15, "all up")
    snapshot = view(cluster)
    assert ClusterViewSchema().validate(snapshot) == {}
    assert [n["name"] for n in snapshot["nodes"]] == list(cluster.cluster.nodes)
    for node in snapshot["nodes"]:
        assert node["url"] == cluster.url_of(node["name"])
        assert node["since"] <= snapshot["now"]
    assert snapshot["node"] == "frontend-1" and row(snapshot, "frontend-1")["self"]
    primary = snapshot["primary"]
    assert primary["node"] in cluster.names("catalog")
    assert primary["holder"] == primary["node"] and primary["epoch"] >= 1
    roles = {n["name"]: n["role"] for n in snapshot["nodes"] if n["service"] == "catalog"}
    assert sorted(roles.values()) == ["backup", "primary"]
    recovery = row(snapshot, "recovery-1")
    assert recovery["health"] == "up" and isinstance(recovery["queues"], dict)
    assert all(n["queued"] == 0 for n in snapshot["nodes"])  # nothing missed yet


def test_cache_hit_rate_and_request_rate_follow_traffic(cluster):
    for _ in range(3):
        for book in range(1, 8):
            assert cluster.api.lookup(book).status_code == 200
    snapshot = view(cluster)
    assert snapshot["cache"]["hits"] > 0
    assert 0 < snapshot["cache"]["hit_rate"] <= 1
    assert snapshot["requests"]["per_second"] > 0
    assert snapshot["requests"]["total"] >= 21


def test_page_and_its_files_are_served_under_a_strict_csp(cluster):
    page = cluster.api.get("/cluster")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "onload=" not in html and "javascript:" not in html
    assert cluster.cluster.staff_token not in html
    assert cluster.cluster.cluster_secret not in html
    for name in cluster.cluster.nodes:
        assert f'id="node-{name}"' in html
    for asset, kind in re.findall(r'(?:src|href)="(/static/cluster\.(js|css))"', html):
        response = cluster.api.get(asset)
        assert response.status_code == 200, asset
        expected = "text/javascript" if kind == "js" else "text/css"
        assert response.headers["Content-Type"].startswith(expected)
    assert "textContent" in cluster.api.get("/static/cluster.js").text
    assert "innerHTML" not in cluster.api.get("/static/cluster.js").text


def test_cluster_json_is_open_and_documented(cluster):
    session = requests.Session()
    session.trust_env = False
    spec = session.get(cluster.url_of("frontend-1") + "/openapi.json", timeout=10).json()
    operation = spec["paths"]["/cluster.json"]["get"]
    assert "security" not in operation
    assert "nodes" in spec["components"]["schemas"]["ClusterView"]["properties"]
    assert "/cluster" in spec["paths"]
    text = view(cluster)
    for secret in (cluster.cluster.staff_token, cluster.cluster.cluster_secret):
        assert secret not in str(text)


def kill_and_see_down(cluster, name: str) -> float:
    started = time.monotonic()
    cluster.kill(name)
    wait_until(
        lambda: row(view(cluster), name)["health"] == "down",
        DOWN_WITHIN,
        f"{name} to show as down",
    )
    took = time.monotonic() - started
    print(f"{name}: SIGKILL -> down on /cluster.json in {took:.2f} s")
    assert took < DOWN_WITHIN
    return took


@pytest.mark.parametrize("service", ["order", "catalog"])
def test_a_killed_node_shows_down_with_an_event_then_comes_back(cluster, service):
    if service == "catalog":  # the backup: the primary stays where it is
        name = next(n for n in cluster.names("catalog") if cluster.role(n) == "backup")
    else:
        name = cluster.names("order")[-1]
    killed_at = time.time()
    kill_and_see_down(cluster, name)
    snapshot = view(cluster)
    assert row(snapshot, name)["role"] is None  # a dead node's last role is not shown
    down = [e for e in snapshot["events"] if e["node"] == name and e["after"] == "down"]
    assert down and down[0]["at"] >= killed_at - 0.5
    assert "went down" in down[0]["text"]
    assert row(snapshot, name)["since"] >= killed_at - 0.5
    assert snapshot["events"] == sorted(snapshot["events"], key=lambda e: -e["at"])

    cluster.start(name)
    wait_until(lambda: row(view(cluster), name)["health"] == "up", 10, f"{name} back up")
    back = [e for e in view(cluster)["events"] if e["node"] == name and e["kind"] == "health"]
    assert back[0]["after"] == "up" and back[0]["at"] > down[0]["at"]


def test_the_primary_killed_is_a_failover_event(cluster):
    old = view(cluster)["primary"]
    kill_and_see_down(cluster, old["node"])
    new = wait_until(
        lambda: (p := view(cluster)["primary"])["node"] not in (None, old["node"]) and p,
        20,
        "another primary",
    )
    assert new["epoch"] > old["epoch"] and new["holder"] == new["node"]
    events = view(cluster)["events"]
    failover = next(e for e in events if e["kind"] == "primary" and e["after"] == new["node"])
    assert failover["before"] == old["node"] and "failover" in failover["text"]
    cluster.start(old["node"])
