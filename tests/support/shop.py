"""The staff's and the multi-book customer's side of the public API, for tests."""

from __future__ import annotations

import requests

from tests.support.cluster import Api


class Shop:
    """Orders of several books, the staff's catalog and revenue reports on one front-end."""

    def __init__(self, api: Api):
        self.api = api

    def _staff(self, token: str | None) -> dict:
        token = self.api.staff_token if token == "default" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def order(self, items: list[dict], key: str | None = None) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.api.send("POST", "/orders", json={"items": items}, headers=headers)

    def add_book(
        self, book: dict, key: str | None = None, token: str | None = "default"
    ) -> requests.Response:
        headers = {**self._staff(token), **({"Idempotency-Key": key} if key else {})}
        return self.api.send("POST", "/books", json=book, headers=headers)

    def edit(self, book_id, changes: dict, token: str | None = "default") -> requests.Response:
        return self.api.send("PATCH", f"/books/{book_id}", json=changes, headers=self._staff(token))

    def withdraw(self, book_id, comment, token: str | None = "default") -> requests.Response:
        body = {"comment": comment} if comment is not None else None
        return self.api.send("DELETE", f"/books/{book_id}", json=body, headers=self._staff(token))

    def restore(self, book_id, token: str | None = "default") -> requests.Response:
        return self.api.send("POST", f"/books/{book_id}/restore", headers=self._staff(token))

    def books(self, deleted: str | None = None, token: str | None = "default"):
        params = {"deleted": deleted} if deleted is not None else {}
        return self.api.get("/books", params=params, headers=self._staff(token))

    def export(self, token: str | None = "default") -> requests.Response:
        return self.api.get("/books.csv", headers=self._staff(token))

    def revenue(self, token: str | None = "default", accept: str | None = None, **params):
        headers = {**self._staff(token), **({"Accept": accept} if accept else {})}
        query = {
            ("from" if k == "start" else "to" if k == "end" else k): v for k, v in params.items()
        }
        return self.api.get("/reports/revenue", params=query, headers=headers)
