"""A real Prometheus scrapes a real cluster (`bazar up --monitor`), and promtool accepts
every node's /metrics. Skipped where the Debian package `prometheus` is not installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import requests

from common.ops import monitor
from tests.support.cluster import LocalCluster, free_ports, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not on PATH (Debian: apt-get install prometheus)",
)


class Monitored:
    """A LocalCluster started with `--monitor` on a free port, and its Prometheus."""

    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.url = f"http://127.0.0.1:{free_ports(1)[0]}"
        self.http = requests.Session()
        self.http.trust_env = False

    def up(self) -> str:
        port = self.url.rpartition(":")[2]
        try:
            return self.cluster.bazar(
                "up", "--detach", "--timeout", "60", "--monitor", "--monitor-port", port
            ).stdout
        except BaseException:
            self.cluster.down()
            raise

    def query(self, promql: str) -> list[dict]:
        answer = self.http.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    def by_node(self, promql: str) -> dict[str, float]:
        return {r["metric"].get("node"): float(r["value"][1]) for r in self.query(promql)}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    m = Monitored(LocalCluster(tmp_path_factory.mktemp("monitored")))
    m.output = m.up()
    yield m
    m.cluster.down()


def test_up_prints_the_prometheus_url(monitored):
    assert f"prometheus: {monitored.url}" in monitored.output


def test_every_node_is_scraped_up_with_its_job_and_node_label(monitored):
    nodes = monitored.cluster.cluster.nodes

    def all_up():
        found = {r["metric"].get("node"): r for r in monitored.query("up")}
        return found if all(n in found and found[n]["value"][1] == "1" for n in nodes) else None

    found = wait_until(all_up, 30, "up == 1 for every node")
    for name, node in nodes.items():
        assert found[name]["metric"]["job"] == node.service


def test_every_node_reports_http_requests(monitored):
    nodes = set(monitored.cluster.cluster.nodes)
    query = "sum by (node) (bazar_http_requests_total)"
    counts = wait_until(
        lambda: (found := monitored.by_node(query)) and nodes <= set(found) and found,
        30,
        "bazar_http_requests_total from every node",
    )
    assert all(counts[name] > 0 for name in nodes)


def test_promtool_accepts_every_nodes_metrics(monitored):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian package prometheus)")
    for name in monitored.cluster.cluster.nodes:
        text = monitored.http.get(f"{monitored.cluster.url_of(name)}/metrics", timeout=10).text
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_down_stops_prometheus_too(monitored):  # the last test: it stops the cluster
    monitored.cluster.down()
    assert not monitor.pid_file(monitored.cluster.cluster).exists()
    with pytest.raises(requests.ConnectionError):
        monitored.http.get(f"{monitored.url}/-/ready", timeout=2)
