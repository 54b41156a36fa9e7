"""The Bazar traffic mix: customers browse (most traffic), buy and order several books;
a few staff edit prices, manage a title of their own and read the day's revenue.

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 60s \
        --host http://127.0.0.1:8000 --csv loadtests/results/mix

The staff token comes from $BAZAR_STAFF_TOKEN, else from the cluster config
($BAZAR_CONFIG or config/cluster.toml). Tasks tagged `restock` set stock
levels; exclude them (`-E restock`) when a run checks the stock invariant.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import HttpUser, between, tag, task

from common.config import load_cluster

TOPICS = ["distributed systems", "undergraduate school", "spring"]
BOOK_IDS = list(range(1, 8))


def staff_token() -> str:
    return os.environ.get("BAZAR_STAFF_TOKEN") or load_cluster().staff_token


def check_book(response, book_id: int) -> None:
    """Mark a 200 with the wrong body as a failure, not a success."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}")
        return
    book = response.json()
    if book.get("id") != book_id or not {"title", "cost", "quantity"} <= set(book):
        response.failure(f"unexpected body {book!r}")


class Customer(HttpUser):
    """Searches and looks up much more than it buys."""

    weight = 10
    wait_time = between(0.0, 0.2)

    @task(6)
    def lookup(self):
        book_id = random.choice(BOOK_IDS)
        with self.client.get(
            f"/lookup/{book_id}", name="/lookup/[id]", catch_response=True
        ) as response:
            check_book(response, book_id)

    @task(3)
    def search(self):
        topic = random.choice(TOPICS)
        with self.client.get(
            f"/search/{topic}", name="/search/[topic]", catch_response=True
        ) as response:
            hits = response.json() if response.status_code == 200 else None
            if not hits or not all({"id", "title"} <= set(h) for h in hits):
                response.failure(f"status {response.status_code}: {response.text[:80]}")

    @task(1)
    def buy(self):
        book_id = random.choice(BOOK_IDS)
        headers = {"Idempotency-Key": f"locust-{uuid.uuid4()}"}
        with self.client.post(
            f"/buy/{book_id}",
            json={"quantity": 1},
            headers=headers,
            name="/buy/[id]",
            catch_response=True,
        ) as response:
            if response.status_code == 410:
                response.success()  # sold out is a correct answer, not an error
            elif response.status_code != 201 or "order_id" not in response.json():
                response.failure(f"status {response.status_code}: {response.text[:80]}")

    @task(1)
    def order_several(self):
        books = random.sample(BOOK_IDS, random.randint(2, 4))
        items = [{"book_id": b, "quantity": random.randint(1, 2)} for b in books]
        headers = {"Idempotency-Key": f"locust-{uuid.uuid4()}"}
        with self.client.post(
            "/orders",
            json={"items": items},
            headers=headers,
            name="/orders",
            catch_response=True,
        ) as response:
            if response.status_code == 410:
                response.success()  # a book sold out: a correct answer
            elif response.status_code != 201 or response.json().get("status") != "confirmed":
                response.failure(f"status {response.status_code}: {response.text[:80]}")


class Staff(HttpUser):
    """A few staff members changing prices and restocking."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {staff_token()}"}
        # A title of this staff member's own, to withdraw and restore (never a seed book,
        # which customers look up). The key makes a restarted user find the same one.
        response = self.client.post(
            "/books",
            json={
                "title": f"Staff pick {id(self)}",
                "topic": "staff picks",
                "cost": 9.99,
                "quantity": 100,
            },
            headers={**self.headers, "Idempotency-Key": f"locust-staff-{uuid.uuid4()}"},
            name="/books",
        )
        self.own_book = response.json()["id"] if response.status_code == 201 else None

    @task(3)
    def update_price(self):
        book_id = random.choice(BOOK_IDS)
        price = round(random.uniform(10, 60), 2)
        with self.client.put(
            f"/update/price/{book_id}",
            json={"price": price},
            headers=self.headers,
            name="/update/price/[id]",
            catch_response=True,
        ) as response:
            check_book(response, book_id)

    @tag("restock")
    @task(1)
    def restock(self):
        book_id = random.choice(BOOK_IDS)
        with self.client.put(
            f"/update/item/{book_id}",
            json={"quantity": 900},
            headers=self.headers,
            name="/update/item/[id]",
            catch_response=True,
        ) as response:
            check_book(response, book_id)

    @task(1)
    def withdraw_and_restore(self):
        if self.own_book is None:
            return
        path = f"/books/{self.own_book}"
        body = {"comment": "seasonal: back next week"}
        self.client.delete(path, json=body, headers=self.headers, name="/books/[id]")
        self.client.post(f"{path}/restore", headers=self.headers, name="/books/[id]/restore")

    @task(1)
    def revenue_today(self):
        self.client.get("/reports/revenue?by=book", headers=self.headers, name="/reports/revenue")
