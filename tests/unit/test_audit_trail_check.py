"""The fault runs' audit-trail checker (tests/support/audit_trail.py), fed bad trails."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tests.support import audit_trail
from tests.support.audit_trail import Entry, as_seen, chained, last_acked_stands
from tests.support.staff_member import StaffLog, StaffWrite

ROLES = {"admin": "manager", "m1": "manager", "c1": "clerk"}


def price(rid, price, status, started, book=1, staff="m1") -> StaffWrite:
    w = StaffWrite(rid, staff, "price", book, {"cost": price}, started, status=status)
    w.ended = started + 0.5
    return w


def entry(i, rid, before, after, book=1, staff="m1", action="price", role=None) -> Entry:
    return Entry(i, staff, role or ROLES[staff], action, book, before, after, rid)


def log_of(*writes) -> StaffLog:
    log = StaffLog(writes=list(writes))
    log.roles.update(ROLES)
    return log


def test_one_entry_per_acknowledged_write_passes():
    log = log_of(price("r1", 101.0, 200, 1.0), price("r2", 102.0, 200, 2.0))
    entries = [
        entry(1, "r1", {"cost": 50.0}, {"cost": 101.0}),
        entry(2, "r2", {"cost": 101.0}, {"cost": 102.0}),
    ]
    problems, figures = as_seen(log, entries)
    assert problems == [] and figures.entries == 2 and figures.by_staff["m1"] == 2
    assert chained(entries, {1: {"cost": 102.0}}, bought={1}) == []
    assert last_acked_stands(log.writes, {1: {"cost": 102.0}}, bought={1}) == []


def test_a_missing_a_doubled_and_a_refused_entry_are_named():
    log = log_of(
        price("acked", 101.0, 200, 1.0),
        price("twice", 102.0, 503, 2.0),
        price("refused", 103.0, 401, 3.0),
    )
    entries = [
        entry(1, "twice", {"cost": 50.0}, {"cost": 102.0}),
        entry(2, "twice", {"cost": 102.0}, {"cost": 102.0}),
        entry(3, "refused", {"cost": 102.0}, {"cost": 103.0}),
        entry(4, "nobody", {"cost": 103.0}, {"cost": 103.0}),
    ]
    problems, figures = as_seen(log, entries)
    text = "\n".join(problems)
    assert "request acked was acknowledged (200) but has no audit entry" in text
    assert "request twice: 2 audit entries" in text
    assert "was refused (401) but has entry 3" in text
    assert "entry 4 (m1 price book 1, request nobody): no staff request had this id" in text
    assert len(problems) == 4
    assert (figures.unknown, figures.unknown_landed) == (1, 1)


def test_an_entry_naming_another_person_role_action_or_value_is_named():
    log = log_of(price("r1", 101.0, 200, 1.0))
    wrong = Entry(1, "c1", "clerk", "quantity", 2, {"cost": 50.0}, {"cost": 99.0}, "r1")
    problems, _ = as_seen(log, [wrong])
    assert len(problems) == 5, problems
    assert any("staff 'c1', the request: 'm1'" in p for p in problems)
    assert any("after has cost=99.0, it set 101.0" in p for p in problems)


def test_an_add_retried_with_its_key_is_one_write_naming_the_book_made():
    book = {"title": "T", "topic": "t", "cost": 12.5, "quantity": 41}
    first = StaffWrite("a1", "c1", "add", None, book, 1.0, key="k", status=503)
    second = StaffWrite("a2", "c1", "add", 9, book, 2.0, key="k", status=201)
    log = log_of(first, second)
    landed = entry(1, "a1", None, dict(book), book=9, staff="c1", action="add")
    assert as_seen(log, [landed])[0] == []  # the first attempt landed, the retry found it
    elsewhere = entry(1, "a1", None, dict(book), book=8, staff="c1", action="add")
    assert as_seen(log, [elsewhere])[0] == [
        f"{elsewhere}: book_id 8, the request: 9"  # not the book the 201 named
    ]
    both = [landed, entry(2, "a2", None, dict(book), book=10, staff="c1", action="add")]
    assert "2 audit entries" in as_seen(log, both)[0][0]


def test_a_broken_chain_and_a_final_state_no_entry_explains_are_named():
    entries = [
        entry(1, "r1", {"cost": 50.0}, {"cost": 101.0}),
        entry(2, "r2", {"cost": 100.0}, {"cost": 102.0}),  # 101 -> ? -> 102
    ]
    problems = chained(entries, {1: {"cost": 103.0}}, bought={1})
    assert len(problems) == 2
    assert "before cost=100.0, but entry 1" in problems[0]
    assert "book 1 has cost=103.0, but the last entry, entry 2" in problems[1]


def test_quantities_of_bought_books_are_not_chained():
    entries = [
        entry(1, "q1", {"quantity": 25}, {"quantity": 25}, book=7, action="quantity"),
        entry(2, "q2", {"quantity": 3}, {"quantity": 30}, book=7, action="quantity"),
    ]
    assert chained(entries, {7: {"quantity": 12}}, bought={7}) == []
    assert len(chained(entries, {7: {"quantity": 12}}, bought=set())) == 2


def test_the_last_acknowledged_value_stands_unless_an_unknown_write_came_after():
    acked, later = price("r1", 101.0, 200, 1.0), price("r2", 102.0, 0, 2.0)
    books = {1: {"cost": 102.0}}
    assert last_acked_stands([acked, later], books, bought=set()) == []
    early = price("r0", 100.0, 0, 0.0)  # ended (0.5) before the acked one began (1.0)
    problems = last_acked_stands([early, acked], {1: {"cost": 100.0}}, bought=set())
    assert problems == ["book 1 has cost=100.0; the last acknowledged write set 101.0 (request r1)"]


def test_a_refused_sign_in_and_a_401_no_clock_explains_are_violations():
    log = StaffLog()
    log.refused_sign_ins.append(("m1", 401, "wrong name or password"))
    log.unauthorized += [
        ("m1", "http://fe-1", "staff token is not valid yet"),
        ("m1", "http://fe-1", "staff token has expired: sign in again (POST /login)"),
        ("c1", "http://fe-2", "staff token is wrong"),
    ]
    assert audit_trail.sign_in_problems(log) == [
        "sign-in of m1 refused: 401 wrong name or password",
        "c1's write refused at http://fe-2: 401 staff token is wrong",
    ]


def test_replicas_with_different_trails_fail_the_check():
    def row(i, after):
        return (i, f"w{i}", "t", "m1", "manager", "price", 1, None, json.dumps(after), f"r{i}")

    trails = {
        "catalog-1": [row(1, {"cost": 101.0})],
        "catalog-2": [row(1, {"cost": 101.0}), row(2, {"cost": 102.0})],
    }

    def rows(name, query):
        if query == audit_trail.AUDIT_QUERY:
            return trails[name]
        if query == audit_trail.BOOKS_QUERY:
            return [(1, "T", "t", 101.0, 5)]
        return []

    fake = SimpleNamespace(names=lambda service: ["catalog-1", "catalog-2"], rows=rows)
    log = log_of(price("r1", 101.0, 200, 1.0))
    problems, _ = audit_trail.check(fake, log, bought={1})
    assert problems == ["audit_log differ: catalog-2 vs catalog-1 (2 vs 1 rows, 1 differ)"]
