"""The staff's and the multi-book customer's side of the public API, for tests."""

from __future__ import annotations

import uuid

import requests

from tests.support.cluster import Api


class Shop:
    """Orders of several books, the staff's catalog and revenue reports on one front-end."""

    def __init__(self, api: Api):
        self.api = api

    def _staff(self, token: str | None) -> dict:
        token = self.api.staff_token if token == "default" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def staff_headers(self, token: str | None = "default") -> dict:
        """The Authorization header of `token` ("default": the cluster's staff token)."""
        return self._staff(token)

    def order(self, items: list[dict], key: str | None = None) -> requests.Response:
        return self.order_body({"items": items}, key)

    def order_body(self, body, key: str | None = None) -> requests.Response:
        """POST /orders with any JSON body, for the checks of bad ones."""
        headers = {"Idempotency-Key": key} if key else {}
        return self.api.send("POST", "/orders", json=body, headers=headers)

    def add_book(
        self, book: dict, key: str | None = None, token: str | None = "default"
    ) -> requests.Response:
        headers = {**self._staff(token), **({"Idempotency-Key": key} if key else {})}
        return self.api.send("POST", "/books", json=book, headers=headers)

    def new_book(self, cost: float = 10.0, quantity: int = 100, **fields) -> dict:
        """A book of its own for one test (unique title and topic unless given)."""
        tag = uuid.uuid4().hex[:10]
        book = {"title": f"Book {tag}", "topic": f"topic {tag}", "cost": cost, "quantity": quantity}
        response = self.add_book({**book, **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def edit(self, book_id, changes: dict, token: str | None = "default") -> requests.Response:
        return self.api.send("PATCH", f"/books/{book_id}", json=changes, headers=self._staff(token))

    def withdraw(self, book_id, comment, token: str | None = "default") -> requests.Response:
        body = {"comment": comment} if comment is not None else None
        return self.api.send("DELETE", f"/books/{book_id}", json=body, headers=self._staff(token))

    def restore(self, book_id, token: str | None = "default") -> requests.Response:
        return self.api.send("POST", f"/books/{book_id}/restore", headers=self._staff(token))

    def books(self, deleted: str | None = None, token: str | None = "default", **params):
        """One page of GET /books (`limit`, `after` as given)."""
        params = {**params, **({"deleted": deleted} if deleted is not None else {})}
        return self.api.get("/books", params=params, headers=self._staff(token))

    def every_book(self, deleted: str | None = None) -> list[dict]:
        """Every page of GET /books, following Link rel=next to the last."""
        response = self.books(deleted, limit=1000)
        found = []
        while True:
            assert response.status_code == 200, response.text
            found += response.json()
            if "next" not in response.links:
                return found
            url = response.links["next"]["url"]
            response = self.api.http.get(url, headers=self._staff("default"), timeout=30)

    def export(self, token: str | None = "default") -> requests.Response:
        return self.api.get("/books.csv", headers=self._staff(token))

    def revenue(self, token: str | None = "default", accept: str | None = None, **params):
        headers = {**self._staff(token), **({"Accept": accept} if accept else {})}
        return self.api.get("/reports/revenue", params=_period(params), headers=headers)

    def revenue_csv(self, token: str | None = "default", **params) -> requests.Response:
        """The same report from GET /reports/revenue.csv."""
        return self.api.get(
            "/reports/revenue.csv", params=_period(params), headers=self._staff(token)
        )


def _period(params: dict) -> dict:
    """Query parameters of a report: start= and end= stand for from= and to=."""
    return {("from" if k == "start" else "to" if k == "end" else k): v for k, v in params.items()}
