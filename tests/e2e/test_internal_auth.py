"""Internal routes refuse callers without the cluster secret (design §6)."""

from __future__ import annotations

import pytest
import requests

from common.auth import SignedAuth

# One internal route per node kind, with a request that is valid when signed.
ROUTES = [
    ("catalog-1", "GET", "/lookup/1", None),
    ("catalog-1", "GET", "/search/spring", None),
    ("catalog-1", "GET", "/sync", None),
    ("catalog-1", "POST", "/sync", {"entries": []}),
    ("catalog-2", "PUT", "/update/1", {"price": 50}),
    ("order-1", "GET", "/sync", None),
    ("order-1", "POST", "/sync", {"entries": []}),
    ("order-2", "GET", "/orders/none", None),
    ("recovery-1", "GET", "/queue/catalog-1", None),
    ("recovery-1", "POST", "/queue/catalog-1", {"entries": []}),
    ("frontend-1", "DELETE", "/invalidate/1", None),
]


def plain(url: str, method: str, body, **kw) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.request(method, url, json=body, timeout=10, **kw)


@pytest.mark.parametrize("name, method, path, body", ROUTES)
def test_unsigned_internal_call_is_401(shared_cluster, name, method, path, body):
    response = plain(shared_cluster.url_of(name) + path, method, body)
    assert response.status_code == 401
    assert "message" in response.json()


@pytest.mark.parametrize("name, method, path, body", ROUTES)
def test_call_signed_with_another_secret_is_401(shared_cluster, name, method, path, body):
    response = plain(
        shared_cluster.url_of(name) + path,
        method,
        body,
        auth=SignedAuth("a-different-cluster-secret"),
    )
    assert response.status_code == 401


def test_signed_call_is_served(shared_cluster):
    response = shared_cluster.call("catalog-2", "GET", "/lookup/1")
    assert response.status_code == 200
    assert response.json()["version"] >= 1


def test_replayed_signed_request_is_401(shared_cluster):
    url = shared_cluster.url_of("catalog-1") + "/lookup/1"
    request = requests.Request("GET", url).prepare()
    SignedAuth(shared_cluster.cluster.cluster_secret)(request)
    session = requests.Session()
    session.trust_env = False
    assert session.send(request, timeout=10).status_code == 200
    assert session.send(request, timeout=10).status_code == 401


@pytest.mark.parametrize("name", ["catalog-1", "order-1", "recovery-1", "frontend-1"])
def test_health_is_open(shared_cluster, name):
    assert plain(shared_cluster.url_of(name) + "/health", "GET", None).status_code == 200


SAMPLE = {"book_id": "1", "topic": "spring", "target": "catalog-1", "order_id": "x", "name": "ann"}
# /metrics: open from loopback, where these tests run (elsewhere it needs the staff token)
OPEN_PATHS = {"/health", "/openapi.json", "/docs", "/metrics"}


def every_operation(cluster, name: str):
    spec = plain(cluster.url_of(name) + "/openapi.json", "GET", None).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path.format(**SAMPLE), method.upper(), operation


@pytest.mark.parametrize("name", ["catalog-1", "order-1", "recovery-1", "frontend-1"])
def test_every_documented_internal_route_refuses_strangers(shared_cluster, name):
    """Walks the node's own OpenAPI document, so a new internal route is covered too."""
    walked = 0
    for path, method, operation in every_operation(shared_cluster, name):
        if {"cluster": []} not in operation.get("security", []):
            assert name == "frontend-1" or path in OPEN_PATHS, f"{method} {path} is not signed"
            continue
        response = plain(shared_cluster.url_of(name) + path, method, {})
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"
        walked += 1
    assert walked >= (1 if name == "frontend-1" else 3)


# -- signed, but wrong ------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PUT", "/update/1", {}),
        ("PUT", "/update/1", {"price": -1}),
        ("POST", "/buy/1", {"order_id": "o", "quantity": 0}),
        ("POST", "/resolve/1", {"quantity": 1}),
    ],
)
def test_backup_catalog_says_400_to_a_bad_write_before_421(shared_cluster, method, path, body):
    response = shared_cluster.call("catalog-2", method, path, json=body)
    assert response.status_code == 400
    assert response.json()["message"]


def test_backup_catalog_sends_a_good_write_to_the_primary(shared_cluster):
    response = shared_cluster.call("catalog-2", "PUT", "/update/1", json={"quantity": 5})
    assert response.status_code == 421
    assert response.json() == {"message": "not the primary", "primary": "catalog-1"}


@pytest.mark.parametrize(
    "node, path",
    [("catalog-1", "/verify_item_in_stock/1?quantity="), ("recovery-1", "/queue/catalog-1?limit=")],
)
@pytest.mark.parametrize("value", ["0", "%C2%B2", "x"])
def test_bad_query_integer_is_400(shared_cluster, node, path, value):
    response = shared_cluster.call(node, "GET", path + value)
    assert response.status_code == 400
    assert "must be an integer" in response.json()["message"]
