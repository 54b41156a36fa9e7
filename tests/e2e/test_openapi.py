"""Every node serves an OpenAPI 3 document generated from its routes and schemas."""

from __future__ import annotations

import pytest
import requests

EXPECTED = {
    "frontend-1": {
        "/search/{topic}",
        "/search",
        "/lookup/{book_id}",
        "/buy/{book_id}",
        "/update/price/{book_id}",
        "/update/item/{book_id}",
        "/orders/{order_id}",
        "/invalidate/{book_id}",
        "/health",
    },
    "catalog-1": {
        "/search/{topic}",
        "/search",
        "/lookup/{book_id}",
        "/update/{book_id}",
        "/verify_item_in_stock/{book_id}",
        "/buy/{book_id}",
        "/sync",
        "/snapshot",
        "/health",
    },
    "order-1": {"/buy/{book_id}", "/orders/{order_id}", "/sync", "/health"},
    "recovery-1": {"/queue/{target}", "/queue/{target}/ack", "/health"},
}


def document(cluster, name: str) -> dict:
    session = requests.Session()
    session.trust_env = False
    response = session.get(cluster.url_of(name) + "/openapi.json", timeout=10)
    assert response.status_code == 200  # open, like /health
    return response.json()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_document_lists_every_route(shared_cluster, name):
    spec = document(shared_cluster, name)
    assert spec["openapi"].startswith("3.")
    assert EXPECTED[name] <= set(spec["paths"])


def test_bodies_and_answers_come_from_the_schemas(shared_cluster):
    spec = document(shared_cluster, "frontend-1")
    price = spec["components"]["schemas"]["Price"]
    assert price["required"] == ["price"]
    update = spec["paths"]["/update/price/{book_id}"]["put"]
    assert update["security"] == [{"staff": []}]
    assert {"200", "400", "401", "404"} <= set(update["responses"])
    buy = spec["paths"]["/buy/{book_id}"]["post"]
    assert {"201", "404", "410", "503"} <= set(buy["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in buy["parameters"])


def test_the_snapshot_routes_document_their_file(shared_cluster):
    snapshot = document(shared_cluster, "catalog-1")["paths"]["/snapshot"]
    binary = {"application/vnd.sqlite3": {"schema": {"type": "string", "format": "binary"}}}
    assert snapshot["get"]["responses"]["200"]["content"] == binary
    assert snapshot["put"]["requestBody"]["content"] == binary
    assert {"400", "401", "409", "415"} <= set(snapshot["put"]["responses"])
    assert snapshot["put"]["security"] == [{"cluster": []}]


def test_internal_routes_are_marked_signed(shared_cluster):
    spec = document(shared_cluster, "catalog-1")
    assert spec["paths"]["/buy/{book_id}"]["post"]["security"] == [{"cluster": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


@pytest.mark.parametrize("name", ["frontend-1", "catalog-1"])
def test_docs_page_lists_every_operation_of_the_document(shared_cluster, name):
    session = requests.Session()
    session.trust_env = False
    page = session.get(shared_cluster.url_of(name) + "/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    html = page.text
    for path, methods in document(shared_cluster, name)["paths"].items():
        for method in map(str.upper, methods):
            heading = f'<span class="method {method}">{method}</span> <span class="path">{path}'
            assert heading in html, f"{method} {path}"
    assert "<script" not in html


def test_docs_page_explains_a_staff_route(shared_cluster):
    session = requests.Session()
    session.trust_env = False
    html = session.get(shared_cluster.url_of("frontend-1") + "/docs", timeout=10).text
    assert "Authorization: Bearer" in html
    assert "&gt; 0" in html  # price: exclusive minimum, escaped
    assert "idempotency key (or staff write id) reused for a different request" in html


@pytest.mark.parametrize("name", ["frontend-1", "catalog-1"])
def test_paged_routes_document_limit_and_after(shared_cluster, name):
    spec = document(shared_cluster, name)
    for path in ("/search/{topic}", "/search", "/books"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
        assert params["after"]["schema"]["maxLength"] == 200
        assert "400" in spec["paths"][path]["get"]["responses"]
    words = {p["name"]: p for p in spec["paths"]["/search"]["get"]["parameters"]}
    assert words["q"]["required"] is True and words["q"]["schema"]["maxLength"] == 200
