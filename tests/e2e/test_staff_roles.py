"""Roles and the audit trail through a real front-end (docs/staff.md): what a clerk and a
manager may do, the 403 that names the role, and the one audit entry each accepted
staff write leaves (who, what, the book, before and after, the request id the client
sent), in pages with `Link: rel="next"` and as CSV.

Runs on the shared cluster: every test makes its own accounts and books, and reads
the trail filtered by them, so other modules' writes never count.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.accounts import MANAGER_ONLY, Staff, new_name
from tests.support.cluster import assert_error
from tests.support.shop import Shop

AUDIT_COLUMNS = ["id", "at", "staff", "role", "action", "book_id", "before", "after", "request_id"]


@pytest.fixture(scope="module")
def staff(shared_cluster) -> Staff:
    return Staff(shared_cluster.api)


@pytest.fixture(scope="module")
def clerk(staff) -> tuple[str, str]:
    return staff.signed_in("clerk")


@pytest.fixture(scope="module")
def manager(staff) -> tuple[str, str]:
    return staff.signed_in("manager")


def rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def act(staff: Staff, token: str, method: str, path: str, body=None, **headers):
    """A staff request with `token`; returns the response."""
    kw = {"json": body} if body is not None else {}
    return staff.api.send(method, path, headers={**staff.bearer(token), **headers}, **kw)


def new_book(staff: Staff, token=None, key=None, request_id=None, tag=None) -> dict:
    tag = tag or uuid.uuid4().hex[:10]
    body = {"title": f"Roles {tag}", "topic": f"roles {tag}", "cost": 10.0, "quantity": 50}
    headers = {**({"Idempotency-Key": key} if key else {})}
    headers |= {"X-Request-Id": request_id} if request_id else {}
    response = act(staff, token or staff.api.staff_token, "POST", "/books", body, **headers)
    assert response.status_code == 201, response.text
    return response.json()


def staff_book(staff: Staff, book_id: int) -> dict:
    books = Shop(staff.api).every_book() + Shop(staff.api).every_book("true")
    return next(b for b in books if b["id"] == book_id)


# -- what each role may do ----------------------------------------------------------------
CLERK_MAY = [
    ("PUT", "/update/item/{id}", {"quantity": 7}),
    ("PATCH", "/books/{id}", {"quantity": 8}),
    ("GET", "/books", None),
    ("GET", "/books?deleted=true", None),
    ("GET", "/books.csv", None),
]
MANAGER_ONLY_ACTIONS = [
    ("PUT", "/update/price/{id}", {"price": 12.5}),
    ("PATCH", "/books/{id}", {"cost": 12.5}),
    ("PATCH", "/books/{id}", {"title": "A title a clerk may not set"}),
    ("PATCH", "/books/{id}", {"topic": "a topic a clerk may not set"}),
    ("PATCH", "/books/{id}", {"quantity": 9, "cost": 12.5}),
    ("DELETE", "/books/{id}", {"comment": "a clerk may not withdraw"}),
    ("POST", "/books/{id}/restore", None),
    ("GET", "/reports/revenue", None),
    ("GET", "/audit", None),
    ("GET", "/staff", None),
    ("POST", "/staff", {"name": "made-by-a-clerk", "role": "manager", "password": "p" * 12}),
    ("POST", "/staff/{name}/disable", None),
]


def test_a_clerk_may_add_books(staff, clerk):
    book = new_book(staff, clerk[1])
    assert book["title"].startswith("Roles ")


@pytest.mark.parametrize(("method", "path", "body"), CLERK_MAY)
def test_a_clerk_may_change_quantities_list_and_export(staff, clerk, method, path, body):
    book = new_book(staff)
    response = act(staff, clerk[1], method, path.format(id=book["id"]), body)
    assert response.status_code == 200, response.text
    if body:
        assert staff_book(staff, book["id"])["quantity"] == body["quantity"]


@pytest.mark.parametrize(("method", "path", "body"), MANAGER_ONLY_ACTIONS)
def test_a_clerk_is_refused_a_managers_action_with_403_naming_the_role(
    staff, clerk, manager, method, path, body
):
    book = new_book(staff)
    victim = staff.account("clerk")[0] if "{name}" in path else None
    before = staff.api.lookup(book["id"]).json()
    trail = staff.entries(staff=clerk[0], limit=1)
    response = act(staff, clerk[1], method, path.format(id=book["id"], name=victim), body)
    assert_error(response, 403)
    assert response.json()["message"] == MANAGER_ONLY
    assert staff.api.lookup(book["id"]).json() == before  # nothing changed
    assert [e["staff"] for e in staff.entries(book=book["id"])] == ["admin"]  # only the add
    assert staff.entries(staff=clerk[0], limit=1) == trail  # a refusal is not a write
    if path.startswith("/staff"):
        accounts = {a["name"]: a["disabled"] for a in staff.accounts().json()}
        assert "made-by-a-clerk" not in accounts
        assert accounts.get(victim, False) is False


@pytest.mark.parametrize(("method", "path", "body"), CLERK_MAY + MANAGER_ONLY_ACTIONS)
def test_a_manager_may_do_every_staff_action(staff, manager, method, path, body):
    book = new_book(staff)
    victim = staff.account("clerk")[0] if "{name}" in path else None
    if path.endswith("/restore"):
        assert act(staff, manager[1], "DELETE", f"/books/{book['id']}", {"comment": "c"}).ok
    if (method, path) == ("POST", "/staff"):
        body = {**body, "name": new_name("by-manager")}
    response = act(staff, manager[1], method, path.format(id=book["id"], name=victim), body)
    assert response.status_code in (200, 201), response.text


def test_the_static_staff_token_is_admin_a_manager(staff):
    book = new_book(staff)
    response = act(staff, staff.api.staff_token, "PUT", f"/update/price/{book['id']}", {"price": 3})
    assert response.status_code == 200, response.text
    assert staff.entries(book=book["id"])[0]["staff"] == "admin"
    assert staff.entries(book=book["id"])[0]["role"] == "manager"


def test_without_a_token_staff_routes_are_401_not_403(staff):
    for method, path, body in CLERK_MAY + MANAGER_ONLY_ACTIONS:
        kw = {"json": body} if body is not None else {}
        response = staff.api.send(method, path.format(id=1, name="x"), **kw)
        assert_error(response, 401)


# -- the audit trail -------------------------------------------------------------------------
def test_each_staff_write_leaves_one_entry_with_the_request_id(staff, clerk, manager):
    ids = {name: rid() for name in ("add", "item", "patch-q", "price", "edit", "out", "back")}
    book = new_book(staff, clerk[1], key=rid(), request_id=ids["add"])
    path = f"/books/{book['id']}"
    writes = [
        (clerk, "PUT", f"/update/item/{book['id']}", {"quantity": 40}, "item"),
        (clerk, "PATCH", path, {"quantity": 30}, "patch-q"),
        (manager, "PUT", f"/update/price/{book['id']}", {"price": 12.5}, "price"),
        (manager, "PATCH", path, {"title": "Audited", "cost": 11.0}, "edit"),
        (manager, "DELETE", path, {"comment": "out of print"}, "out"),
        (manager, "POST", f"{path}/restore", None, "back"),
    ]
    for (_, token), method, where, body, name in writes:
        response = act(staff, token, method, where, body, **{"X-Request-Id": ids[name]})
        assert response.status_code == 200, response.text
    entries = staff.entries(book=book["id"])
    assert [e["request_id"] for e in entries] == [ids[n] for n in reversed(list(ids))]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    got = {e["request_id"]: e for e in entries}
    expect = {
        "add": (clerk, "add", None),
        "item": (clerk, "quantity", ({"quantity": 50}, {"quantity": 40})),
        "patch-q": (clerk, "edit", ({"quantity": 40}, {"quantity": 30})),  # PATCH: an edit
        "price": (manager, "price", ({"cost": 10.0}, {"cost": 12.5})),
        "edit": (manager, "edit", ({"title": book["title"], "cost": 12.5},
                                   {"title": "Audited", "cost": 11.0})),
    }  # fmt: skip
    for name, ((who, _), action, change) in expect.items():
        entry = got[ids[name]]
        role = "clerk" if who == clerk[0] else "manager"
        assert (entry["staff"], entry["role"], entry["action"]) == (who, role, action), entry
        assert entry["book_id"] == book["id"]
        if change is not None:
            assert (entry["before"], entry["after"]) == change, entry
    added = got[ids["add"]]
    assert added["before"] is None
    assert {k: added["after"][k] for k in ("title", "topic", "cost", "quantity")} == {
        k: book[k] for k in ("title", "topic", "cost", "quantity")
    }
    out, back = got[ids["out"]], got[ids["back"]]
    assert (out["action"], back["action"]) == ("withdraw", "restore")
    assert out["after"]["comment"] == "out of print" and out["before"]["comment"] is None, out
    assert out["before"]["deleted_at"] is None and out["after"]["deleted_at"] is not None
    assert back["before"] == out["after"] and back["after"]["deleted_at"] is None
    assert datetime.fromisoformat(out["at"]) <= datetime.fromisoformat(back["at"])


def test_an_idempotency_key_sent_again_adds_no_entry(staff, clerk):
    key, tag = rid(), uuid.uuid4().hex[:10]
    first = new_book(staff, clerk[1], key=key, request_id=rid(), tag=tag)
    again = new_book(staff, clerk[1], key=key, request_id=rid(), tag=tag)
    assert again["id"] == first["id"]
    assert [e["action"] for e in staff.entries(book=first["id"])] == ["add"]


def test_account_changes_are_in_the_trail_without_a_hash(staff):
    name, made, off = new_name("trail"), rid(), rid()
    body = {"name": name, "role": "clerk", "password": "correct horse battery"}
    headers = {**staff.bearer(), "X-Request-Id": made}
    assert staff.api.send("POST", "/staff", json=body, headers=headers).status_code == 201
    headers = {**staff.bearer(), "X-Request-Id": off}
    assert staff.api.send("POST", f"/staff/{name}/disable", headers=headers).status_code == 200
    add, disable = staff.entry_of(made, action="staff-add"), staff.entry_of(off)
    assert (add["staff"], add["role"], add["book_id"], add["before"]) == (
        "admin", "manager", None, None,
    )  # fmt: skip
    assert add["after"] == {"name": name, "role": "clerk", "disabled": False}
    assert (disable["action"], disable["book_id"]) == ("staff-disable", None)
    assert disable["before"] == {"name": name, "role": "clerk", "disabled": False}
    assert disable["after"] == {"name": name, "role": "clerk", "disabled": True}
    text = str([add, disable])
    assert "argon2" not in text and "hash" not in text and "correct horse" not in text


def test_the_trail_is_read_in_pages_with_link_next(staff, manager):
    book = new_book(staff, manager[1])
    for quantity in range(1, 7):
        act(staff, manager[1], "PUT", f"/update/item/{book['id']}", {"quantity": quantity})
    everything = staff.entries(book=book["id"])
    assert len(everything) == 7
    seen, response = [], staff.audit(book=book["id"], limit=3)
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page) <= 3
        seen += page
        pages += 1
        if "next" not in response.links:
            break
        response = staff.api.http.get(
            _absolute(staff, response.links["next"]["url"]), headers=staff.bearer(), timeout=30
        )
    assert pages == 3
    assert seen == everything  # newest first, none twice, none left out


def test_the_same_page_as_csv(staff, manager):
    book = new_book(staff, manager[1])
    for quantity in (1, 2, 3):
        act(staff, manager[1], "PUT", f"/update/item/{book['id']}", {"quantity": quantity})
    page = staff.audit(book=book["id"], limit=2)
    sheet = staff.audit(book=book["id"], limit=2, accept="text/csv")
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sheet.text)))
    assert rows[0] == AUDIT_COLUMNS
    assert [int(r[0]) for r in rows[1:]] == [e["id"] for e in page.json()]
    first = dict(zip(rows[0], rows[1], strict=True))
    entry = page.json()[0]
    assert (first["staff"], first["action"], int(first["book_id"])) == (
        entry["staff"], entry["action"], book["id"],
    )  # fmt: skip
    assert first["request_id"] == entry["request_id"]
    assert sheet.links.get("next") is not None


def test_filters_by_staff_action_and_day(staff, clerk, manager):
    book = new_book(staff, clerk[1])
    act(staff, manager[1], "PUT", f"/update/price/{book['id']}", {"price": 4})
    assert {e["staff"] for e in staff.entries(staff=clerk[0])} == {clerk[0]}
    priced = staff.entries(book=book["id"], action="price")
    assert [e["staff"] for e in priced] == [manager[0]]
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert len(staff.entries(book=book["id"], **{"from": today.isoformat()})) == 2
    assert len(staff.entries(book=book["id"], **{"from": today.isoformat(), "to": tomorrow})) == 2
    assert staff.entries(book=book["id"], **{"from": tomorrow}) == []
    assert staff.entries(book=book["id"], to=today.isoformat()) == []  # `to` is exclusive


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"book": "one"}, {"from": "yesterday"},
     {"after": "not-a-cursor"}, {"action": "delete"}],
)  # fmt: skip
def test_a_bad_query_is_400(staff, params):
    assert_error(staff.audit(**params), 400)


def _absolute(staff: Staff, url: str) -> str:
    return url if url.startswith("http") else staff.api.url + url


def test_a_write_id_sent_again_acts_once_and_one_used_for_another_write_is_refused(
    shared_cluster, staff
):
    """What the front-end's own retries rely on, at the catalog primary (signed calls)."""
    cluster = shared_cluster
    primary = next(n for n in cluster.names("catalog") if cluster.role(n) == "primary")
    book = new_book(staff)
    by = {"staff": "admin", "role": "manager", "write_id": uuid.uuid4().hex, "request_id": rid()}
    path = f"/update/{book['id']}"
    first = cluster.call(primary, "PUT", path, json={"quantity": 11, "by": by})
    again = cluster.call(primary, "PUT", path, json={"quantity": 11, "by": by})
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["version"] == first.json()["version"]  # not applied twice
    assert staff.entry_of(by["request_id"], book=book["id"])["action"] == "quantity"  # one
    other = cluster.call(primary, "PUT", path, json={"price": 12.5, "by": by})
    assert_error(other, 422, "write id")
    made = cluster.call(
        primary, "POST", "/staff", json={"name": new_name("w"), "role": "clerk",
                                         "password_hash": "x", "by": by},
    )  # fmt: skip
    assert_error(made, 422, "write id")
