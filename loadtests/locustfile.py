"""The Bazar traffic mix: customers browse (most traffic), buy and order several books;
a few staff edit prices, manage a title of their own and read the day's revenue.
Customers also search by words, reading the pages to the last (docs/scale.md).

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 60s \
        --host http://127.0.0.1:8000 --csv loadtests/results/mix

Staff are people with accounts (docs/staff.md): when the test starts, this
process makes `ACCOUNTS` manager accounts as `admin`, with the static staff
token from $BAZAR_STAFF_TOKEN, else from the cluster config ($BAZAR_CONFIG or
config/cluster.toml). Each staff user signs in with `POST /login` on start and
writes with its own token; a 401 is a failure in the figures (never hidden),
and the user signs in again. Tasks tagged `restock` set stock levels; exclude
them (`-E restock`) when a run checks the stock invariant.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets
import uuid

import requests
from locust import HttpUser, between, events, tag, task
from locust.exception import StopUser
from locust.runners import MasterRunner

from common.config import load_cluster

TOPICS = ["distributed systems", "undergraduate school", "spring"]
WORDS = ["dos", "rpc", "undergrad", "cooking", "project", "theory", "spring valley"]  # seed titles
BOOK_IDS = list(range(1, 8))
ACCOUNTS = 3  # staff accounts made at the start; staff users take them in turn
accounts: list[tuple[str, str]] = []  # (name, password) made by this process
_turns = itertools.count()


def staff_token() -> str:
    return os.environ.get("BAZAR_STAFF_TOKEN") or load_cluster().staff_token


@events.test_start.add_listener
def make_accounts(environment, **_kwargs) -> None:
    """The staff accounts, made once as admin (the static token) before any user starts.
    Names are new on every run, so runs against one cluster never collide (409)."""
    if isinstance(environment.runner, MasterRunner):
        return  # a distributed run's master has no users; each worker makes its own
    accounts.clear()
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {staff_token()}"}
    for i in range(1, ACCOUNTS + 1):
        name, password = f"locust-{run}-{i}", secrets.token_urlsafe(12)
        body = {"name": name, "role": "manager", "password": password}
        try:
            response = requests.post(
                f"{environment.host}/staff", json=body, headers=headers, timeout=30
            )
        except requests.RequestException as e:
            logging.error("staff account %s: %s", name, e)
            continue
        if response.status_code == 201:
            accounts.append((name, password))
        else:
            logging.error("staff account %s: %s %s", name, response.status_code, response.text)


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

    @task(2)
    def word_search(self):
        """A word search, read two books a page to its last page (the Link header)."""
        path, pages = f"/search?q={random.choice(WORDS)}&limit=2", 0
        while path and pages < 10:
            with self.client.get(path, name="/search?q=[words]", catch_response=True) as response:
                hits = response.json() if response.status_code == 200 else None
                if hits is None or not all({"id", "title", "topic"} <= set(h) for h in hits):
                    response.failure(f"status {response.status_code}: {response.text[:80]}")
                    return
            path, pages = response.links.get("next", {}).get("url"), pages + 1

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
    """A few staff members (managers, each signed in) changing prices and restocking."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        if not accounts:
            events.request.fire(
                request_type="POST",
                name="/staff (accounts at start)",
                response_time=0,
                response_length=0,
                exception=RuntimeError("no staff account was made"),
                context={},
            )
            raise StopUser()
        self.name, self.password = accounts[next(_turns) % len(accounts)]
        self.headers: dict = {}
        self.sign_in()
        # A title of this staff member's own, to withdraw and restore (never a seed book,
        # which customers look up). The key makes a restarted user find the same one.
        with self.staff_call(
            "POST",
            "/books",
            "/books",
            json={
                "title": f"Staff pick {id(self)}",
                "topic": "staff picks",
                "cost": 9.99,
                "quantity": 100,
            },
            key=f"locust-staff-{uuid.uuid4()}",
        ) as response:
            _ok_or_fail(response)
            self.own_book = response.json()["id"] if response.status_code == 201 else None

    def sign_in(self) -> None:
        """POST /login: a token of this member's own (a failure in the figures if not)."""
        body = {"name": self.name, "password": self.password}
        with self.client.post("/login", json=body, name="/login", catch_response=True) as r:
            token = _json(r).get("token") if r.status_code == 200 else None
            if token:
                self.headers = {"Authorization": f"Bearer {token}"}
            else:
                r.failure(f"status {r.status_code}: {r.text[:80]}")

    def staff_call(self, method: str, path: str, name: str, key: str | None = None, **kw):
        """A staff request with this member's token, its answer to check (`catch_response`).
        A 401 (an expired token) stays a failure, and the member signs in again."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        response = self.client.request(
            method, path, headers=headers, name=name, catch_response=True, **kw
        )
        return _SignInAgainOn401(self, response)

    @task(3)
    def update_price(self):
        book_id = random.choice(BOOK_IDS)
        price = round(random.uniform(10, 60), 2)
        path = f"/update/price/{book_id}"
        with self.staff_call("PUT", path, "/update/price/[id]", json={"price": price}) as response:
            check_book(response, book_id)

    @tag("restock")
    @task(1)
    def restock(self):
        book_id = random.choice(BOOK_IDS)
        path = f"/update/item/{book_id}"
        with self.staff_call("PUT", path, "/update/item/[id]", json={"quantity": 900}) as r:
            check_book(r, book_id)

    @task(1)
    def withdraw_and_restore(self):
        if self.own_book is None:
            return
        path = f"/books/{self.own_book}"
        body = {"comment": "seasonal: back next week"}
        with self.staff_call("DELETE", path, "/books/[id]", json=body) as response:
            _ok_or_fail(response)
        with self.staff_call("POST", f"{path}/restore", "/books/[id]/restore") as response:
            _ok_or_fail(response)

    @task(1)
    def revenue_today(self):
        path = "/reports/revenue?by=book"
        with self.staff_call("GET", path, "/reports/revenue") as response:
            _ok_or_fail(response)


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _ok_or_fail(response) -> None:
    if not 200 <= response.status_code < 300:
        response.failure(f"status {response.status_code}: {response.text[:80]}")


class _SignInAgainOn401:
    """`with` over a catch_response answer: after the caller's checks, a 401 is marked a
    failure (named as such) and the member signs in again."""

    def __init__(self, user: Staff, response):
        self.user, self.response = user, response

    def __enter__(self):
        return self.response.__enter__()

    def __exit__(self, *exc):
        unauthorized = self.response.status_code == 401
        if unauthorized:
            self.response.failure(f"401 (signed in again): {self.response.text[:80]}")
        done = self.response.__exit__(*exc)
        if unauthorized:
            self.user.sign_in()
        return done
