"""/metrics on every node and request ids across hops, on a real cluster (issue 11)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from common.observe.requestlog import log_path
from common.ops import procs
from tests.support.cluster import wait_until


def scrape(cluster, name: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a node's /metrics: (name, labels) -> value."""
    response = requests.get(cluster.url_of(name) + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no sample {name} {labels}"
    return sum(found)


@pytest.fixture(scope="module")
def busy_cluster(shared_cluster):
    api = shared_cluster.api
    assert api.lookup(10**12).status_code == 404  # a miss, whatever earlier modules cached
    for _ in range(3):
        assert api.lookup(3).status_code == 200
    assert api.buy(3).status_code == 201
    assert api.set_price(4, 26).status_code == 200
    return shared_cluster


def test_every_node_exports_requests_process_and_its_own_figures(busy_cluster):
    c = busy_cluster
    for name in c.cluster.nodes:
        samples = scrape(c, name)
        assert value(samples, "process_resident_memory_bytes") > 10_000_000, name
        assert value(samples, "process_open_fds") > 0, name
        assert value(samples, "bazar_node_serving", node=name) == 1.0
        assert value(samples, "bazar_http_requests_total", route="/health") > 0, name
    front = scrape(c, "frontend-1")
    assert value(front, "bazar_http_requests_total", route="/lookup/{book_id}", status="200") >= 3
    assert value(front, "bazar_http_request_duration_seconds_count", route="/buy/{book_id}") >= 1
    assert value(front, "bazar_cache_hits_total") >= 2
    assert value(front, "bazar_cache_misses_total") >= 1
    assert value(front, "bazar_cache_invalidations_total") >= 1
    assert value(front, "bazar_backend_up", node="order-1") == 1.0


def test_voters_agree_on_the_lease_and_the_primary_counts_its_writes(busy_cluster):
    c = busy_cluster
    primary = next(n for n in c.names("catalog") if c.role(n) == "primary")
    figures = {n: scrape(c, n) for n in [*c.names("catalog"), *c.names("recovery")]}
    epochs = {value(f, "bazar_lease_epoch") for f in figures.values()}
    assert len(epochs) == 1 and epochs.pop() >= 1
    for f in figures.values():
        assert value(f, "bazar_lease_holder", holder=primary) == 1.0
    assert value(figures[primary], "bazar_catalog_primary") == 1.0
    assert value(figures[primary], "bazar_catalog_writes_total", kind="buy") >= 1
    assert value(figures[primary], "bazar_catalog_writes_total", kind="price") >= 1
    assert value(figures[primary], "bazar_replication_push_duration_seconds_count") >= 1
    decisions = sum(
        value(scrape(c, n), "bazar_order_decisions_total", outcome="confirmed")
        for n in c.names("order")
        if any(k[0] == "bazar_order_decisions_total" for k in scrape(c, n))
    )
    assert decisions >= 1


def test_a_stopped_backup_shows_as_queue_depth_push_failures_and_outbox(shared_cluster, shop):
    c = shared_cluster
    book = shop.new_book()["id"]
    primary = next(n for n in c.names("catalog") if c.role(n) == "primary")
    backup = next(n for n in c.names("catalog") if n != primary)
    c.kill(backup)
    try:
        for price in (30, 31, 32):
            assert c.api.set_price(book, price).status_code == 200
        recovery = scrape(c, "recovery-1")
        assert value(recovery, "bazar_recovery_queue_depth", node=backup) >= 1
        figures = scrape(c, primary)
        assert value(figures, "bazar_replication_push_failures_total", peer=backup) >= 1
        assert value(figures, "bazar_outbox_depth", peer=backup) == 0  # the queue has them
        health = c.call(primary, "GET", "/health").json()
        assert health["outbox"] == {backup: 0}
    finally:
        c.start(backup)  # the shared cluster goes on whole


def test_counters_survive_a_worker_restart(shared_cluster):
    """Multiprocess mode: gunicorn's new worker adds to the dead one's counts."""
    c = shared_cluster
    for _ in range(5):
        c.api.lookup(1)
    before = value(scrape(c, "frontend-1"), "bazar_http_requests_total", route="/lookup/{book_id}")
    master = procs.running_pid(c.cluster, c.node("frontend-1"))
    worker = int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: answers(c.api.url + "/lookup/1"), timeout=20, what="a new worker")
    after = value(scrape(c, "frontend-1"), "bazar_http_requests_total", route="/lookup/{book_id}")
    assert after > before


def test_a_sane_client_request_id_is_kept_and_followed_to_every_hop(busy_cluster):
    c = busy_cluster
    rid = f"e2e-{time.time_ns()}"
    response = c.api.send("POST", "/buy/2", headers={"X-Request-Id": rid})
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] == rid

    def hops():
        found = {}
        for name in c.cluster.nodes:
            path = log_path(c.cluster.data_dir, name)
            if path.exists():
                for line in path.read_text().splitlines():
                    record = json.loads(line)
                    if record["request_id"] == rid:
                        found[name] = record
        return found if {"frontend-1"} < set(found) and len(found) >= 3 else None

    found = wait_until(hops, timeout=5, what="log lines of every hop")
    front = found["frontend-1"]
    assert front["route"] == "/buy/{book_id}" and front["status"] == 201
    assert any(b.startswith("order-") for b in front["backends"])
    assert {n.split("-")[0] for n in found} >= {"frontend", "order", "catalog"}
    for record in found.values():
        assert set(record) >= {"time", "node", "route", "status", "duration_ms", "backends"}


@pytest.mark.parametrize("sent", ["", "has space", "x" * 200, 'quote"d', "é-accent"])
def test_an_unusable_request_id_is_replaced(busy_cluster, sent):
    response = busy_cluster.api.get("/lookup/1", headers={"X-Request-Id": sent})
    assert response.status_code == 200
    given = response.headers["X-Request-Id"]
    assert given != sent and len(given) == 32
