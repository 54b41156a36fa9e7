"""The staff audit trail after heal, against what the staff clients saw (issue 22).

Read from every catalog replica's SQLite file (`audit_log`, `staff_accounts`)
and set against the `StaffLog` of tests/support/staff.py, where every staff
request carried an `X-Request-Id` of its own:

- the trail and the accounts are identical on every catalog replica;
- a write the client saw acknowledged (2xx) has exactly one entry: its request
  id, staff name, role, action and book, and an `after` holding what it set
  (an add's attempts, one Idempotency-Key, are one write: one entry between
  them, naming the book the 201 named);
- a write refused definitively (4xx) has none; one whose outcome is unknown
  (5xx, no answer) has none or one, never two; no entry is of a request no
  client made;
- each entry's `after` is the book's state at that version: per book and
  field (title, topic, cost, and quantity where no buyer buys), an entry's
  `before` is the previous entry's `after`, and the last entry's `after` is
  what every replica holds now; and what the client saw agrees: the last
  acknowledged value of a field is the final one, unless a write of it with
  an unknown outcome may have come after.

Sign-ins refused and 401s on writes other than a token's time (expired, not
valid yet: clocks off by more than the leeway) are violations too.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from tests.support.cluster import LocalCluster
from tests.support.ledger import capped, same_everywhere
from tests.support.staff_member import StaffLog, StaffWrite

AUDIT_QUERY = (
    "SELECT id, write_id, at, staff, role, action, book_id, before, after, request_id "
    "FROM audit_log ORDER BY id"
)
ACCOUNTS_QUERY = (
    "SELECT name, role, password_hash, created_at, disabled_at, version "
    "FROM staff_accounts ORDER BY name"
)
BOOKS_QUERY = "SELECT id, title, topic, cost, quantity FROM books ORDER BY id"
CHAINED = ("title", "topic", "cost", "quantity")  # the book fields a staff write sets
# 401s a token's wall-clock times explain (docs/staff.md: a leeway of 30 s)
TIME_REFUSALS = ("has expired", "not valid yet")


@dataclass(frozen=True)
class Entry:
    id: int
    staff: str
    role: str
    action: str
    book_id: int | None
    before: dict | None
    after: dict | None
    request_id: str | None

    def __str__(self) -> str:
        book = f" book {self.book_id}" if self.book_id is not None else ""
        return f"entry {self.id} ({self.staff} {self.action}{book}, request {self.request_id})"


@dataclass
class TrailFigures:
    entries: int = 0
    by_staff: Counter = field(default_factory=Counter)
    unknown: int = 0  # staff writes (an add's attempts: one) whose outcome stayed unknown
    unknown_landed: int = 0  # of those, the ones with an entry: they happened


def read_trail(cluster: LocalCluster, name: str) -> list[tuple]:
    return cluster.rows(name, AUDIT_QUERY)


def entries_of(rows: list[tuple]) -> list[Entry]:
    def parsed(text):
        return None if text is None else json.loads(text)

    return [Entry(r[0], r[3], r[4], r[5], r[6], parsed(r[7]), parsed(r[8]), r[9]) for r in rows]


def check(cluster: LocalCluster, log: StaffLog, bought: set[int]) -> tuple[list[str], TrailFigures]:
    """Every audit-trail violation after heal; and the trail's figures. `bought`: the
    books buyers buy (their quantities move without an entry: not chained)."""
    catalogs = cluster.names("catalog")
    trails = {n: read_trail(cluster, n) for n in catalogs}
    problems = same_everywhere("audit_log", trails)
    problems += same_everywhere(
        "staff_accounts", {n: cluster.rows(n, ACCOUNTS_QUERY) for n in catalogs}
    )
    entries = entries_of(trails[catalogs[0]])
    books = {
        r[0]: dict(zip(CHAINED, r[1:], strict=True)) for r in cluster.rows(catalogs[0], BOOKS_QUERY)
    }
    found, figures = as_seen(log, entries)
    problems += capped(found)
    problems += capped(chained(entries, books, bought))
    problems += capped(last_acked_stands(log.writes, books, bought))
    problems += capped(sign_in_problems(log))
    return problems, figures


def _group_key(w: StaffWrite) -> tuple[str, str]:
    return ("key", w.key) if w.key else ("request", w.request_id)


def as_seen(log: StaffLog, entries: list[Entry]) -> tuple[list[str], TrailFigures]:
    """One entry per acknowledged write, none per refused one, at most one per unknown
    one, each naming who did what as the client asked; none nobody asked for."""
    figures = TrailFigures(entries=len(entries), by_staff=Counter(e.staff for e in entries))
    by_request: dict[str | None, list[Entry]] = defaultdict(list)
    for e in entries:
        by_request[e.request_id].append(e)
    groups: dict[tuple[str, str], list[StaffWrite]] = defaultdict(list)
    for w in log.writes:
        groups[_group_key(w)].append(w)
    ours = {w.request_id for w in log.writes}
    problems = [f"{e}: no staff request had this id" for e in entries if e.request_id not in ours]
    for group in groups.values():
        found = [e for w in group for e in by_request.get(w.request_id, [])]
        acked = [w for w in group if w.outcome == "acked"]
        what = _describe(group)
        if not acked and any(w.outcome == "unknown" for w in group):
            figures.unknown += 1
            figures.unknown_landed += bool(found)
        if len(found) > 1:
            problems.append(f"{what}: {len(found)} audit entries: {', '.join(map(str, found))}")
        elif acked and not found:
            problems.append(f"{what} was acknowledged ({acked[0].status}) but has no audit entry")
        elif found and all(w.outcome == "refused" for w in group):
            statuses = "/".join(str(w.status) for w in group)
            problems.append(f"{what} was refused ({statuses}) but has {found[0]}")
        for entry in found[:1]:
            write = next(w for w in group if w.request_id == entry.request_id)
            problems += _matches(entry, write, acked[0] if acked else None, log.roles)
    return problems, figures


def _describe(group: list[StaffWrite]) -> str:
    w = group[-1]
    book = f" book {w.book_id}" if w.book_id is not None else ""
    tries = f" ({len(group)} attempts, key {w.key})" if len(group) > 1 else ""
    return f"{w.staff} {w.action}{book} {w.fields} request {w.request_id}{tries}"


def _matches(entry: Entry, write: StaffWrite, acked: StaffWrite | None, roles) -> list[str]:
    """The entry names the write's staff, role, action and book, and `after` what it set."""
    problems = []
    book_id = acked.book_id if acked is not None else write.book_id
    wanted = {
        "staff": write.staff,
        "role": roles.get(write.staff),
        "action": write.action,
        "book_id": book_id,
    }
    for name, value in wanted.items():
        if value is None and name == "book_id" and write.action == "add":
            continue  # an add nobody was told the id of: any new book
        if getattr(entry, name) != value:
            problems.append(f"{entry}: {name} {getattr(entry, name)!r}, the request: {value!r}")
    after = entry.after or {}
    for name, value in write.fields.items():
        if not _same(after.get(name), value):
            problems.append(f"{entry}: after has {name}={after.get(name)!r}, it set {value!r}")
    return problems


def _same(a, b) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return Decimal(repr(a)) == Decimal(repr(b))
    return a == b


def chained(entries: list[Entry], books: dict[int, dict], bought: set[int]) -> list[str]:
    """Per book and field, each entry's `before` is the previous entry's `after`, and the
    last `after` is the book's state now."""
    problems = []
    last: dict[tuple[int, str], Entry] = {}
    for e in entries:  # by id: the order the holder wrote them
        if e.book_id is None or not e.after:
            continue
        for name in CHAINED:
            if name not in e.after or (name == "quantity" and e.book_id in bought):
                continue
            previous = last.get((e.book_id, name))
            if previous is not None:
                had = (e.before or {}).get(name, "(no before)")
                if not _same(had, previous.after[name]):
                    problems.append(
                        f"{e}: before {name}={had!r}, but {previous} left it "
                        f"{previous.after[name]!r}"
                    )
            last[(e.book_id, name)] = e
    for (book_id, name), e in sorted(last.items()):
        now = books.get(book_id, {}).get(name, "(no such book)")
        if not _same(now, e.after[name]):
            problems.append(
                f"book {book_id} has {name}={now!r}, but the last entry, {e}, set {e.after[name]!r}"
            )
    return problems


def last_acked_stands(writes: list[StaffWrite], books: dict[int, dict], bought: set[int]):
    """Per book and field: the value now is the last acknowledged one, or one of a write
    with an unknown outcome that may have come after it (it had not ended before the
    acknowledged one began)."""
    by_field: dict[tuple[int, str], list[StaffWrite]] = defaultdict(list)
    for w in writes:
        if w.book_id is None or w.outcome == "refused":
            continue
        for name in w.fields:
            if name in CHAINED and not (name == "quantity" and w.book_id in bought):
                by_field[(w.book_id, name)].append(w)
    problems = []
    for (book_id, name), ws in sorted(by_field.items()):
        acked = [w for w in ws if w.outcome == "acked"]
        if not acked:
            continue
        last = max(acked, key=lambda w: w.started)
        later = [w for w in ws if w.outcome == "unknown" and w.ended > last.started]
        allowed = [last.fields[name]] + [w.fields[name] for w in later]
        now = books.get(book_id, {}).get(name, "(no such book)")
        if not any(_same(now, value) for value in allowed):
            problems.append(
                f"book {book_id} has {name}={now!r}; the last acknowledged write set "
                f"{last.fields[name]!r} (request {last.request_id})"
                + (f", later unknown ones {allowed[1:]}" if later else "")
            )
    return problems


def sign_in_problems(log: StaffLog) -> list[str]:
    """A made account refused at sign-in; a 401 on a write no token time explains."""
    problems = [
        f"sign-in of {name} refused: {status} {message}"
        for name, status, message in log.refused_sign_ins
    ]
    problems += [
        f"{name}'s write refused at {url}: 401 {message}"
        for name, url, message in log.unauthorized
        if not any(why in message for why in TIME_REFUSALS)
    ]
    return problems
