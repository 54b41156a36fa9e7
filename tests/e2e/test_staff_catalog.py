"""Staff's catalog through a real front-end (design §4): add, edit, withdraw, restore,
list and export books, every route and code, and nothing half-written.

Each test makes books of its own (POST /books), so no test depends on
another's stock; rows are checked in every catalog replica's SQLite file.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid

import pytest

from tests.support.cluster import Api, assert_error
from tests.support.shop import Shop

ROW = "SELECT id, title, topic, cost, quantity, version, deleted_at, delete_comment FROM books"


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


@pytest.fixture(scope="module")
def target(shop) -> dict:
    """A book the refused requests aim at: each test checks it is left as it was."""
    return shop.new_book(cost=7, quantity=9)


def rows_everywhere(cluster, where: str) -> list[list[tuple]]:
    """The same query on every catalog replica (a write is acknowledged only once all
    of them have it)."""
    return [cluster.rows(name, f"{ROW} WHERE {where}") for name in cluster.names("catalog")]


def book_everywhere(cluster, book_id: int) -> tuple:
    """The book's row, the same on every catalog replica."""
    found = rows_everywhere(cluster, f"id = {int(book_id)}")
    assert all(len(rows) == 1 for rows in found), found
    assert all(rows == found[0] for rows in found), found
    return found[0][0]


def book_count(cluster) -> list[int]:
    return [
        cluster.rows(name, "SELECT count(*) FROM books")[0][0] for name in cluster.names("catalog")
    ]


def tag() -> str:
    return uuid.uuid4().hex[:10]


# -- POST /books -------------------------------------------------------------------
def test_add_book_is_201_with_a_new_id_and_every_replica_holds_it(cluster, shop):
    title, topic = f"Consensus by Candlelight {tag()}", f"raft {tag()}"
    response = shop.add_book({"title": title, "topic": topic, "cost": 19.99, "quantity": 7})
    assert response.status_code == 201, response.text
    book = response.json()
    assert book == {
        "id": book["id"],
        "title": title,
        "topic": topic,
        "cost": 19.99,
        "quantity": 7,
        "version": 1,
        "deleted_at": None,
        "comment": None,
    }
    assert book["id"] > 7  # after the seed catalog
    assert book_everywhere(cluster, book["id"]) == (
        book["id"], title, topic, 19.99, 7, 1, None, None,
    )  # fmt: skip
    assert cluster.api.lookup(book["id"]).json() == {
        "id": book["id"], "title": title, "topic": topic, "cost": 19.99, "quantity": 7,
    }  # fmt: skip
    assert cluster.api.search(topic.upper()).json() == [{"id": book["id"], "title": title}]


def test_each_new_book_gets_its_own_id(shop):
    ids = [shop.new_book()["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert ids == sorted(ids)


def test_same_idempotency_key_returns_the_same_book_never_a_second(cluster, shop):
    key, title = f"add-{tag()}", f"Once Only {tag()}"
    body = {"title": title, "topic": "keys", "cost": 12.5, "quantity": 3}
    first = shop.add_book(body, key=key)
    again = shop.add_book(body, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    quoted = title.replace("'", "''")
    assert all(len(rows) == 1 for rows in rows_everywhere(cluster, f"title = '{quoted}'"))
    for name in cluster.names("catalog"):
        keys = cluster.rows(name, f"SELECT book_id FROM book_keys WHERE key = '{key}'")
        assert keys == [(first.json()["id"],)]


def test_same_key_sent_at_once_by_many_clients_makes_one_book(cluster, shop):
    key, title = f"race-{tag()}", f"Raced {tag()}"
    body = {"title": title, "topic": "keys", "cost": 3, "quantity": 1}
    answers: list = []

    def add():
        api = Api(cluster.api.url, cluster.api.staff_token)  # a session per client
        answers.append(Shop(api).add_book(body, key=key))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert all(len(rows) == 1 for rows in rows_everywhere(cluster, f"title = '{title}'"))


def test_same_key_with_another_book_is_422_and_adds_nothing(cluster, shop):
    key = f"add-{tag()}"
    first = shop.add_book(
        {"title": f"First {tag()}", "topic": "keys", "cost": 5, "quantity": 1}, key
    )
    assert first.status_code == 201
    before = book_count(cluster)
    other = {"title": f"Other {tag()}", "topic": "keys", "cost": 5, "quantity": 1}
    assert_error(shop.add_book(other, key=key), 422, "Idempotency-Key")
    changed = {**{k: first.json()[k] for k in ("title", "topic", "cost")}, "quantity": 2}
    assert_error(shop.add_book(changed, key=key), 422)
    assert book_count(cluster) == before


def test_malformed_idempotency_key_is_400(cluster, shop):
    before = book_count(cluster)
    body = {"title": f"Keyed {tag()}", "topic": "keys", "cost": 5, "quantity": 1}
    assert_error(shop.add_book(body, key="has spaces in it"), 400, "Idempotency-Key")
    assert_error(shop.add_book(body, key="k" * 201), 400, "Idempotency-Key")
    assert book_count(cluster) == before


GOOD = {"title": "A Fine Book", "topic": "fine", "cost": 10.5, "quantity": 4}


@pytest.mark.parametrize(
    "body, field",
    [
        ({**GOOD, "isbn": "978"}, "isbn"),
        ({**GOOD, "id": 99}, "id"),
        ({k: v for k, v in GOOD.items() if k != "title"}, "title"),
        ({k: v for k, v in GOOD.items() if k != "cost"}, "cost"),
        ({**GOOD, "title": 42}, "title"),
        ({**GOOD, "title": ""}, "title"),
        ({**GOOD, "title": "   "}, "title"),
        ({**GOOD, "title": "two\nlines"}, "title"),
        ({**GOOD, "title": "tab\there"}, "title"),
        ({**GOOD, "title": "trailing newline\n"}, "title"),
        ({**GOOD, "title": "\x1b[2J"}, "title"),  # a terminal escape, alone
        ({**GOOD, "title": "nul\x00"}, "title"),
        ({**GOOD, "title": "x" * 301}, "title"),
        ({**GOOD, "title": "x" * 20_000}, "title"),
        ({**GOOD, "topic": "t" * 101}, "topic"),
        ({**GOOD, "topic": None}, "topic"),
        ({**GOOD, "cost": "10"}, "cost"),
        ({**GOOD, "cost": True}, "cost"),
        ({**GOOD, "cost": -1}, "cost"),
        ({**GOOD, "cost": 0}, "cost"),
        ({**GOOD, "cost": 19.999}, "cost"),
        ({**GOOD, "cost": 0.001}, "cost"),
        ({**GOOD, "cost": 1e300}, "cost"),
        ({**GOOD, "quantity": -1}, "quantity"),
        ({**GOOD, "quantity": 1.5}, "quantity"),
        ({**GOOD, "quantity": "4"}, "quantity"),
        ({**GOOD, "quantity": False}, "quantity"),
        ({**GOOD, "quantity": 2**70}, "quantity"),
        ([GOOD], "body"),
        ("A Fine Book", "body"),
    ],
)
def test_bad_new_book_is_400_naming_the_field_and_adds_nothing(cluster, shop, body, field):
    before = book_count(cluster)
    assert_error(shop.add_book(body), 400, field)
    assert book_count(cluster) == before


def test_non_finite_cost_and_non_json_body_are_400(cluster, shop):
    before = book_count(cluster)
    headers = {**shop.staff_headers(), "Content-Type": "application/json"}
    for raw in (
        '{"title": "N", "topic": "n", "cost": NaN, "quantity": 1}',
        '{"title": "I", "topic": "n", "cost": Infinity, "quantity": 1}',
        '{"title": "D", "title": "D", "topic": "n", "cost": 1, "quantity": 1}',
        "{not json",
    ):
        assert_error(cluster.api.send("POST", "/books", data=raw, headers=headers), 400)
    assert book_count(cluster) == before


def test_a_new_book_shows_in_a_cached_search_at_once(cluster, shop):
    topic = f"cached {tag()}"
    first = shop.new_book(topic=topic)
    assert cluster.api.search(topic).status_code == 200  # cached now
    assert cluster.api.search(topic).json() == [{"id": first["id"], "title": first["title"]}]
    second = shop.new_book(topic=topic)
    assert [hit["id"] for hit in cluster.api.search(topic).json()] == [first["id"], second["id"]]


# -- PATCH /books/<id> ------------------------------------------------------------------
def test_edit_changes_any_subset_and_cached_reads_see_it(cluster, shop):
    book = shop.new_book(cost=10, quantity=5)
    assert cluster.api.lookup(book["id"]).json()["cost"] == 10  # cached now
    edited = shop.edit(book["id"], {"cost": 12.34})
    assert edited.status_code == 200, edited.text
    assert edited.json() == {**book, "cost": 12.34, "version": 2}
    assert cluster.api.lookup(book["id"]).json()["cost"] == 12.34
    changes = {"title": f"Renamed {tag()}", "topic": f"moved {tag()}", "quantity": 0}
    edited = shop.edit(book["id"], changes)
    assert edited.status_code == 200, edited.text
    assert edited.json() == {**book, **changes, "cost": 12.34, "version": 3}
    assert book_everywhere(cluster, book["id"]) == (
        book["id"], changes["title"], changes["topic"], 12.34, 0, 3, None, None,
    )  # fmt: skip
    assert cluster.api.lookup(book["id"]).json()["title"] == changes["title"]


def test_retitling_a_book_shows_in_a_cached_search_at_once(cluster, shop):
    book = shop.new_book()
    assert cluster.api.search(book["topic"]).json()[0]["title"] == book["title"]  # cached
    title = f"Second Edition {tag()}"
    assert shop.edit(book["id"], {"title": title}).status_code == 200
    assert cluster.api.search(book["topic"]).json() == [{"id": book["id"], "title": title}]
    topic = f"elsewhere {tag()}"
    assert shop.edit(book["id"], {"topic": topic}).status_code == 200
    assert cluster.api.search(book["topic"]).status_code == 404
    assert cluster.api.search(topic).json() == [{"id": book["id"], "title": title}]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({}, "at least one"),
        ({"price": 3}, "price"),
        ({"id": 5}, "id"),
        ({"cost": -2}, "cost"),
        ({"cost": 0}, "cost"),
        ({"cost": 1.005}, "cost"),
        ({"cost": "1"}, "cost"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": 2.5}, "quantity"),
        ({"title": ""}, "title"),
        ({"title": "y" * 301}, "title"),
        ({"topic": "bad\x00topic"}, "topic"),
        ({"title": None}, "title"),
        ({"cost": 5, "quantity": -3}, "quantity"),  # one bad field: nothing changes
    ],
)
def test_bad_edit_is_400_and_changes_nothing(cluster, shop, target, changes, field):
    book = target
    row = book_everywhere(cluster, book["id"])
    assert_error(shop.edit(book["id"], changes), 400, field)
    assert book_everywhere(cluster, book["id"]) == row


def test_edit_of_an_unknown_book_is_404(shop):
    assert_error(shop.edit(10**9, {"cost": 3}), 404)
    assert shop.edit(2**64, {"cost": 3}).status_code == 404


# -- DELETE /books/<id> (withdraw) and POST /books/<id>/restore -------------------------
def test_withdrawn_book_is_absent_to_customers_even_when_it_was_cached(cluster, shop):
    book = shop.new_book(quantity=6)
    api = cluster.api
    assert api.lookup(book["id"]).status_code == 200  # cached now
    assert api.search(book["topic"]).status_code == 200  # cached now
    assert api.buy(book["id"], quantity=2).status_code == 201

    comment = f"recalled: misprinted pages {tag()}"
    response = shop.withdraw(book["id"], comment)
    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert withdrawn["comment"] == comment
    assert withdrawn["deleted_at"]  # a UTC timestamp
    assert withdrawn["quantity"] == 4

    assert_error(api.lookup(book["id"]), 404)
    assert_error(api.search(book["topic"]), 404)
    assert_error(api.buy(book["id"]), 404)
    order = Shop(api).order([{"book_id": book["id"], "quantity": 1}])
    assert_error(order, 404)
    assert order.json()["books"] == [book["id"]]
    assert api.set_price(book["id"], 99).status_code == 404
    assert_error(shop.edit(book["id"], {"cost": 99}), 404)

    # the row stays, with its stock, its comment and when, on every replica
    row = book_everywhere(cluster, book["id"])
    assert row[4] == 4
    assert row[6] == withdrawn["deleted_at"]
    assert row[7] == comment


def test_staff_lists_withdrawn_books_with_their_comments(shop):
    kept, gone = shop.new_book(), shop.new_book()
    assert shop.withdraw(gone["id"], "out of print").status_code == 200

    listed = shop.books()
    assert listed.status_code == 200
    listed_ids = [b["id"] for b in shop.every_book()]
    assert kept["id"] in listed_ids and gone["id"] not in listed_ids
    assert listed_ids == sorted(listed_ids)
    assert [b["id"] for b in shop.every_book("false")] == listed_ids

    deleted = {b["id"]: b for b in shop.every_book("true")}
    assert kept["id"] not in deleted
    assert deleted[gone["id"]]["comment"] == "out of print"
    assert deleted[gone["id"]]["deleted_at"]
    assert all(b["deleted_at"] and b["comment"] for b in deleted.values())


def test_restore_brings_the_book_back_with_its_stock(cluster, shop):
    book = shop.new_book(quantity=5, cost=8.25)
    assert cluster.api.buy(book["id"], quantity=2).status_code == 201
    assert shop.withdraw(book["id"], "checking the print run").status_code == 200
    assert cluster.api.lookup(book["id"]).status_code == 404

    response = shop.restore(book["id"])
    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored["deleted_at"] is None and restored["comment"] is None
    assert restored["quantity"] == 3 and restored["cost"] == 8.25
    row = book_everywhere(cluster, book["id"])
    assert (row[4], row[6], row[7]) == (3, None, None)

    assert cluster.api.lookup(book["id"]).json()["quantity"] == 3
    assert cluster.api.search(book["topic"]).json() == [{"id": book["id"], "title": book["title"]}]
    assert book["id"] not in [b["id"] for b in shop.every_book("true")]
    assert cluster.api.buy(book["id"]).status_code == 201
    assert cluster.api.lookup(book["id"]).json()["quantity"] == 2


def test_withdraw_and_restore_twice_change_nothing_more(cluster, shop):
    book = shop.new_book()
    first = shop.withdraw(book["id"], "first reason").json()
    again = shop.withdraw(book["id"], "second reason")
    assert again.status_code == 200
    assert again.json() == first  # the first comment and time stay
    assert book_everywhere(cluster, book["id"])[7] == "first reason"
    restored = shop.restore(book["id"]).json()
    assert shop.restore(book["id"]).json() == restored


def test_withdraw_and_restore_of_an_unknown_book_is_404(shop):
    assert_error(shop.withdraw(10**9, "no such book"), 404)
    assert_error(shop.restore(10**9), 404)
    assert shop.restore(2**64).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"comment": ""},
        {"comment": "   "},
        {"comment": None},
        {"comment": 12},
        {"comment": "x" * 501},
        {"comment": "line\nbreak"},
        {"comment": "\x00"},
        {"comment": "fine", "force": True},
        ["comment"],
    ],
)
def test_withdraw_needs_a_comment_of_1_to_500_characters(cluster, shop, target, body):
    book = target
    row = book_everywhere(cluster, book["id"])
    response = cluster.api.send(
        "DELETE", f"/books/{book['id']}", json=body, headers=shop.staff_headers()
    )
    assert_error(response, 400)
    assert book_everywhere(cluster, book["id"]) == row
    assert cluster.api.lookup(book["id"]).status_code == 200


def test_a_comment_of_500_characters_is_fine(cluster, shop):
    book = shop.new_book()
    comment = "é" * 500
    response = shop.withdraw(book["id"], comment)
    assert response.status_code == 200, response.text
    assert book_everywhere(cluster, book["id"])[7] == comment


# -- GET /books, GET /books.csv -----------------------------------------------------------
def test_list_with_a_bad_deleted_choice_is_400(shop):
    assert_error(shop.books("maybe"), 400, "deleted")
    assert_error(shop.books("any"), 400, "deleted")  # the catalog's internal choice only


def test_export_is_csv_of_every_book_with_every_column(cluster, shop):
    listed, gone = shop.new_book(cost=19.99), shop.new_book(cost=0.01, quantity=0)
    assert shop.withdraw(gone["id"], "withdrawn, for the export").status_code == 200
    response = shop.export()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert list(table[0]) == [
        "id", "title", "topic", "cost", "quantity", "version", "deleted_at", "comment",
    ]  # fmt: skip
    by_id = {int(r["id"]): r for r in table}
    ids = [row[0] for row in cluster.rows("catalog-1", "SELECT id FROM books ORDER BY id")]
    assert sorted(by_id) == ids  # listed and withdrawn alike
    assert by_id[listed["id"]]["title"] == listed["title"]
    assert by_id[listed["id"]]["cost"] == "19.99"  # money as text, two places
    assert by_id[listed["id"]]["deleted_at"] == "" and by_id[listed["id"]]["comment"] == ""
    assert by_id[gone["id"]]["comment"] == "withdrawn, for the export"
    assert by_id[gone["id"]]["deleted_at"]
    assert (by_id[gone["id"]]["quantity"], by_id[gone["id"]]["cost"]) == ("0", "0.01")


TRICKY = [
    ('Commas, Quotes "and" More', 'Commas, Quotes "and" More'),
    ('"Quoted" title', '"Quoted" title'),
    ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
    ("+1 Guide to Sums", "'+1 Guide to Sums"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("Plain; with ; semicolons", "Plain; with ; semicolons"),
    ("Ünïcödé ☃ title", "Ünïcödé ☃ title"),
    ("A = B, not a formula", "A = B, not a formula"),
]


def test_export_quotes_cells_and_escapes_formula_injection(cluster, shop):
    made = {}
    for title, _ in TRICKY:
        made[shop.new_book(title=f"{title}", topic=f"-csv {tag()}")["id"]] = title
    formula = shop.new_book(topic="=1+1")
    assert shop.withdraw(formula["id"], "@cmd: not a formula either, please").status_code == 200

    text = shop.export().text
    by_id = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text, newline=""))}
    expected = dict(TRICKY)
    for book_id, title in made.items():
        assert by_id[book_id]["title"] == expected[title], (title, by_id[book_id])
        assert by_id[book_id]["topic"].startswith("'-csv ")
    assert by_id[formula["id"]]["topic"] == "'=1+1"
    assert by_id[formula["id"]]["comment"] == "'@cmd: not a formula either, please"
    # no line of the file starts a cell with a formula character outside quotes
    for record in csv.reader(io.StringIO(text, newline="")):
        assert not any(c[:1] in ("=", "+", "-", "@") for c in record), record


# -- the staff token ---------------------------------------------------------------------
STAFF_ROUTES = [
    ("POST", "/books", GOOD),
    ("PATCH", "/books/1", {"cost": 1}),
    ("DELETE", "/books/1", {"comment": "not allowed"}),
    ("POST", "/books/1/restore", None),
    ("GET", "/books", None),
    ("GET", "/books?deleted=true", None),
    ("GET", "/books.csv", None),
]


@pytest.mark.parametrize("method, path, body", STAFF_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_staff_routes_need_the_staff_token(cluster, shop, method, path, body, token):
    before = book_count(cluster), book_everywhere(cluster, 1)
    response = cluster.api.send(method, path, json=body, headers=shop.staff_headers(token))
    assert_error(response, 401)
    assert (book_count(cluster), book_everywhere(cluster, 1)) == before


def test_a_token_in_another_scheme_is_401(cluster):
    token = cluster.api.staff_token
    for header in (f"Basic {token}", token, f"Bearer {token}x"):
        response = cluster.api.get("/books", headers={"Authorization": header})
        assert_error(response, 401)


def test_replicas_hold_identical_catalogs_after_the_run(cluster):
    result = cluster.check()
    assert result.returncode == 0, result.stdout
