"""The front-end's /cluster page and /cluster.json: a killed node shows as down within 3 s.

A real cluster with the default health period (0.5 s), nodes killed with
SIGKILL. Membership and Router with a fake client (events, since, retry and
failover counters) are tests/unit/test_cluster_membership.py.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from frontend.cluster_schemas import ClusterViewSchema
from frontend.cluster_view import PAGE_CSP
from tests.support.cluster import LocalCluster, wait_until

DOWN_WITHIN = 3.0  # seconds from SIGKILL to `down` on the page


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
    # The backup restarted by the test before may still be rejoining: a primary first.
    old = wait_until(lambda: (p := view(cluster)["primary"])["node"] and p, 10, "a primary")
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
