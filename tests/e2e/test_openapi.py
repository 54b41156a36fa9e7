"""Every node serves an OpenAPI 3 document generated from its routes and schemas."""

from __future__ import annotations

import pytest
import requests

EXPECTED = {
    "frontend-1": {
        "/search/{topic}",
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
        "/lookup/{book_id}",
        "/update/{book_id}",
        "/verify_item_in_stock/{book_id}",
        "/buy/{book_id}",
        "/sync",
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


def test_internal_routes_are_marked_signed(shared_cluster):
    spec = document(shared_cluster, "catalog-1")
    assert spec["paths"]["/buy/{book_id}"]["post"]["security"] == [{"cluster": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
