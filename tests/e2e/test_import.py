"""`POST /books/import` through a real front-end and catalog (docs/scale.md §4): who may,
what is refused with a 400, each row's fate, one audit entry per batch, a retry of the
same request at the catalog, searches that see the new books; and the catalog primary
killed in the middle of a 20-batch `bazar import`, then the file imported again: every
row exactly once."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid

import pytest

from tests.support.accounts import Staff
from tests.support.cluster import ROOT, assert_error, wait_until

sys.path.insert(0, str(ROOT / "loadtests"))
from titles import COLUMNS, books  # noqa: E402


@pytest.fixture(scope="module")
def c(shared_cluster):
    return shared_cluster


@pytest.fixture(scope="module")
def staff(c) -> Staff:
    return Staff(c.api)


def post(c, body, token: str | None = "default", **kw):
    token = c.api.staff_token if token == "default" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.api.send("POST", "/books/import", json=body, headers=headers, **kw)


def row(line: int, title: str, topic: str = "imports", cost=1.5, quantity=3) -> dict:
    return {"line": line, "title": title, "topic": topic, "cost": cost, "quantity": quantity}


def test_a_clerk_imports_and_each_row_has_its_fate(c, staff):
    name, token = staff.signed_in("clerk")
    tag = uuid.uuid4().hex[:8]
    rows = [
        row(2, f"One {tag}"),
        row(3, f"Two {tag}", cost=0),
        row(4, f" One {tag} "),
        row(5, "RPCs for Dummies", "distributed systems"),
        {**row(6, f"Odd {tag}"), "isbn": "123"},
        row(7, f"Three {tag}", quantity=2),
    ]
    answer = post(c, {"rows": rows}, token)
    assert answer.status_code == 200, answer.text
    done = answer.json()
    one, three = (entry["id"] for entry in done["added"])
    assert [entry["line"] for entry in done["added"]] == [2, 7]
    assert three == one + 1
    assert done["skipped"] == [
        {"line": 4, "id": one, "why": f"same title and topic as line 2 (book {one})"},
        {"line": 5, "id": 2, "why": "same title and topic as book 2"},
    ]
    assert done["refused"] == [
        {"line": 3, "why": "cost: Must be greater than 0 and less than or equal to 1000000000.0."},
        {"line": 6, "why": "isbn: Unknown field."},
    ]
    assert c.api.lookup(three).json() == {
        "id": three, "title": f"Three {tag}", "topic": "imports", "cost": 1.5, "quantity": 2,
    }  # fmt: skip
    [entry] = staff.entries(staff=name, action="import")
    assert entry["role"] == "clerk" and entry["book_id"] is None
    assert entry["after"] == {
        "added": 2, "first_id": one, "last_id": three, "skipped": 2, "refused": 2,
    }  # fmt: skip


def test_what_is_refused_whole(c):
    assert_error(post(c, {"rows": [row(1, "x")]}, token=None), 401, "staff token")
    too_many = [row(n, f"Many {n}") for n in range(1, 1002)]
    assert_error(post(c, {"rows": too_many}), 400, "rows: Length must be between 1 and 1000")
    assert_error(post(c, {"rows": []}), 400, "rows")
    assert_error(post(c, {"rows": [{"title": "no line"}]}), 400, "rows.0.line")
    assert_error(post(c, {"rows": [row(0, "line 0")]}), 400, "rows.0.line")
    assert_error(post(c, {"rows": [row(1, "x")], "more": 1}), 400, "more")
    bearer = {"Authorization": f"Bearer {c.api.staff_token}"}
    plain = c.api.send("POST", "/books/import", data="{}", headers=bearer)
    assert plain.status_code == 415


def test_a_thousand_long_rows_are_more_than_a_public_body_and_fit(c):
    tag = uuid.uuid4().hex[:8]
    rows = [row(n, f"{tag} {n} " + "ä" * 250, topic=f"bulk {tag}") for n in range(1, 1001)]
    answer = post(c, {"rows": rows})
    assert answer.status_code == 200, answer.text
    added = answer.json()["added"]
    assert len(added) == 1000
    assert [a["id"] for a in added] == list(range(added[0]["id"], added[0]["id"] + 1000))
    last = c.api.lookup(added[-1]["id"]).json()
    assert last["title"] == f"{tag} 1000 " + "ä" * 250


def test_searches_see_imported_books_at_once(c):
    topic = f"fresh {uuid.uuid4().hex[:8]}"
    assert post(c, {"rows": [row(1, "First", topic)]}).status_code == 200
    assert [h["title"] for h in c.api.search(topic).json()] == ["First"]  # now cached
    assert post(c, {"rows": [row(1, "Second", topic)]}).status_code == 200
    assert [h["title"] for h in c.api.search(topic).json()] == ["First", "Second"]


def primary(c) -> str:
    return next(name for name in c.names("catalog") if c.role(name) == "primary")


def test_a_retry_of_the_same_request_at_the_catalog_adds_nothing_more(c, staff):
    tag = uuid.uuid4().hex[:8]
    by = {"staff": "admin", "role": "manager", "write_id": uuid.uuid4().hex, "request_id": tag}
    body = {"rows": [row(1, f"Retry {tag}"), row(2, f"Again {tag}")], "refused": 0, "by": by}
    first = c.call(primary(c), "POST", "/books/import", json=body)
    assert first.status_code == 200, first.text
    ids = [added["id"] for added in first.json()["added"]]
    assert len(ids) == 2
    retry = c.call(primary(c), "POST", "/books/import", json=body)
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()  # the same request (write id): it added them
    another = {**body, "by": {**by, "write_id": uuid.uuid4().hex}}
    other = c.call(primary(c), "POST", "/books/import", json=another).json()
    assert other["added"] == []
    assert [skipped["id"] for skipped in other["skipped"]] == ids
    mine = [e for e in staff.entries(action="import", limit=1000) if e["request_id"] == tag]
    assert sorted(e["after"]["added"] for e in mine) == [0, 2]  # none for the retry
    c.wait_converged()
    for name in c.names("catalog"):
        query = f"SELECT id FROM books WHERE title LIKE '% {tag}' ORDER BY id"  # noqa: S608  # nosec B608
        assert [r[0] for r in c.rows(name, query)] == ids


# -- failover ------------------------------------------------------------------------
ROWS, BATCH = 10_000, 500  # 20 batches


def import_file(c, path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "common.ops.cli", "import", str(path), "--batch", str(BATCH)]
    command += [*extra, "--config", str(c.config_path)]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )  # noqa: S603


def summary(out: str) -> tuple[int, int, int]:
    first = out.splitlines()[0]  # added N, skipped M, refused K
    return tuple(int(part.split()[1]) for part in first.split(", "))


def test_the_primary_killed_mid_import_then_the_file_again_adds_each_row_once(
    fresh_cluster, tmp_path
):
    c = fresh_cluster
    path = tmp_path / "books.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(books(ROWS, seed=7))
    seeded = c.rows("catalog-1", "SELECT count(*) FROM books")[0][0]
    victim = primary(c)
    run = import_file(c, path)
    wait_until(
        lambda: c.rows(victim, "SELECT count(*) FROM books")[0][0] >= seeded + 3 * BATCH,
        timeout=60,
        what="three batches in",
    )
    assert run.poll() is None, "the import ended before the kill"
    c.kill(victim)
    out, err = run.communicate(timeout=200)
    assert run.returncode == 0, (out, err)
    survivor = next(n for n in c.names("catalog") if n != victim)
    wait_until(lambda: c.role(survivor) == "primary", timeout=30, what="a new primary")
    after_first = c.rows(survivor, "SELECT count(*) FROM books")[0][0] - seeded

    again = import_file(c, path)
    out, err = again.communicate(timeout=200)
    assert again.returncode == 0, (out, err)
    added, skipped, refused = summary(out)
    assert (added + skipped, refused) == (ROWS, 0)
    assert added == ROWS - after_first  # only what the first run did not get in

    c.start(victim)
    c.wait_converged()
    for name in c.names("catalog"):
        assert c.rows(name, "SELECT count(*) FROM books")[0][0] == seeded + ROWS
        doubled = "SELECT title, topic FROM books GROUP BY title, topic HAVING count(*) > 1"
        assert c.rows(name, doubled) == []
    assert c.check().returncode == 0


def test_a_backup_away_during_an_import_reads_its_queue_in_pages_of_a_few_mib(fresh_cluster):
    """A batch is one replicated entry of up to 1000 books: the recovery node hands a
    returning catalog its queue in pages of about 4 MiB, not 500 such entries at once."""
    c = fresh_cluster
    backup = next(name for name in c.names("catalog") if c.role(name) != "primary")
    c.kill(backup)
    tag = uuid.uuid4().hex[:8]
    for batch in range(12):  # about 420 KB an entry
        rows = [row(n, f"{tag} {batch} {n} " + "p" * 280) for n in range(1, 1001)]
        assert post(c, {"rows": rows}).status_code == 200
    page = c.call("recovery-1", "GET", f"/queue/{backup}", params={"limit": 500})
    assert page.status_code == 200
    entries = page.json()["entries"]
    assert 1 <= len(entries) < 12, len(entries)
    assert len(page.content) < 5 * 1024 * 1024
    c.start(backup)
    c.wait_converged(timeout=60)
    query = f"SELECT count(*) FROM books WHERE title LIKE '{tag} %'"  # noqa: S608  # nosec B608
    assert c.rows(backup, query) == [(12_000,)]


def test_another_front_end_drops_its_searches_not_a_thousand_books(tmp_path):
    """Nothing of a new book is cached anywhere: the other front-ends are told only that
    searches changed (dropping each new book would scan every cached search per book)."""
    from tests.support.cluster import LocalCluster

    c = LocalCluster(tmp_path / "cluster", frontends=2).up()
    try:
        other = c.session()
        url = c.url_of("frontend-2")
        topic = f"two fronts {uuid.uuid4().hex[:8]}"
        assert post(c, {"rows": [row(1, "Before", topic)]}).status_code == 200
        assert [h["title"] for h in other.get(f"{url}/search/{topic}").json()] == ["Before"]
        dropped = other.get(f"{url}/health").json()["cache"]["invalidations"]
        rows = [row(n, f"After {n}", topic) for n in range(1, 1001)]
        assert post(c, {"rows": rows}).status_code == 200  # through frontend-1
        first = other.get(f"{url}/search/{topic}", params={"limit": 1000})
        last = other.get(first.links["next"]["url"])  # a page of 1000, then one of 1
        assert (len(first.json()), [h["title"] for h in last.json()]) == (1000, ["After 1000"])
        assert other.get(f"{url}/health").json()["cache"]["invalidations"] - dropped < 10
    finally:
        c.discard()
