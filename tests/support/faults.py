"""A Jepsen-style bank/counter test for Bazar, in Python: clients, a nemesis, a checker.

Clients buy random books with unique idempotency keys through every
front-end and retry like real clients (same key); about 40% of their
purchases are orders of 2-4 distinct books (POST /orders), the rest single
buys. Staff raise the prices of a few books while readers read them
(tests/support/staff.py). A nemesis SIGKILLs nodes and, on a `--netns`
cluster, cuts the network (tests/support/nemesis.py). Afterwards the
cluster heals, and the checker reads every replica's SQLite file and checks
the invariants of design §7 and of the order ledger (ledger.py: stock,
exact revenue, order_items, catalog decisions), what the clients were told
against what the replicas hold, and the client history for stale reads,
reads of values nobody wrote and reads going back in time. Any client,
reader or nemesis thread that raised fails the run, and so does a nemesis
that made fewer faults of a kind than `fault_minimum`; the report's
`out_of_bounds` holds failed reads and the longest write pause to bounds.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import requests

from order.store import order_id_for
from tests.support import audit_trail, ledger
from tests.support.cluster import LocalCluster, wait_until
from tests.support.fault_report import Report
from tests.support.history import backward_reads, longest_gap, stale_reads, unwritten_reads
from tests.support.nemesis import MixedNemesis
from tests.support.search_history import stale_searches
from tests.support.search_traffic import SearchTraffic
from tests.support.staff import PriceTraffic
from tests.support.staff_member import StaffLog
from tests.support.threads import Workers

__all__ = ["Buy", "Clients", "Report", "check", "fault_minimum", "heal", "run"]

RETRYABLE = {502, 503, 504}
CONVERGE_WITHIN = 10.0  # seconds from the last fault undone to identical replicas (§7 rule 9)
MULTI_SHARE = 0.4  # of purchases that are orders of several books
# Seconds a fault may take beyond its downtime to be undone: a killed node's
# restart until its /health says up (about 2 s here, more on a loaded host).
UNDO_ALLOWANCE = 3.0


@dataclass
class Buy:
    """One purchase: a single buy (POST /buy/<id>) or an order of several books (POST /orders)."""

    key: str
    lines: tuple[tuple[int, int], ...]  # (book_id, quantity), by book
    multi: bool = False
    status: str = "unknown"  # ok (201) | rejected (410) | unknown (no answer after retries)
    order_id: str | None = None
    ended: float = 0.0  # monotonic time of the answer
    total: str | None = None  # the total the 201 named
    items: tuple[tuple[int, int, str], ...] = ()  # the 201's priced lines (orders only)
    short: tuple[int, ...] = ()  # the books a 410 named (orders only)

    @property
    def kind(self) -> str:
        return "multi" if self.multi else "single"


class Clients:
    """Threads that buy (and read) through the front-end until stopped.

    A `recorder` (loadtests/timeline.py's Recorder, or anything with its
    `record`) gets every request attempt: route, start, end, success, status."""

    def __init__(
        self,
        cluster: LocalCluster,
        threads: int,
        book_ids: list[int],
        seed: int = 0,
        recorder=None,
    ):
        self.cluster = cluster
        self.recorder = recorder
        self.threads = threads
        self.book_ids = book_ids
        self.buys: list[Buy] = []
        self.reads = 0
        self.read_failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.seed = seed
        self.workers = Workers()

    def start(self) -> None:
        for i in range(self.threads):
            self.workers.spawn(self._run, i)

    def stop(self) -> list[str]:
        """Stop every client; what went wrong in one (an exception, a client that hung)."""
        self._stop.set()
        return self.workers.join(timeout=60)

    def _run(self, index: int) -> None:
        session = self.cluster.session()
        frontends = [self.cluster.url_of(n) for n in self.cluster.names("frontend")]
        rng = random.Random(self.seed * 1000 + index)
        while not self._stop.is_set():
            url = frontends[index % len(frontends)]
            book_id = rng.choice(self.book_ids)
            self._read(session, url, book_id)
            buy = self._purchase(rng, book_id)
            self._buy(session, url, buy)
            with self._lock:
                self.buys.append(buy)

    def _purchase(self, rng: random.Random, book_id: int) -> Buy:
        """A single buy of `book_id`, or (MULTI_SHARE of the time) an order of 2-4 books."""
        key = f"fault-{uuid.uuid4()}"
        if rng.random() >= MULTI_SHARE or len(self.book_ids) < 2:
            return Buy(key, ((book_id, rng.choice((1, 1, 1, 2, 3))),))
        books = rng.sample(self.book_ids, rng.randint(2, min(4, len(self.book_ids))))
        lines = tuple(sorted((b, rng.choice((1, 1, 2, 3))) for b in books))
        return Buy(key, lines, multi=True)

    def _note(self, route: str, started: float, status: int, ok: bool) -> None:
        if self.recorder is not None:
            write = route.startswith("POST")
            self.recorder.record(route, started, time.monotonic(), status, ok, write)

    def _read(self, session: requests.Session, url: str, book_id: int) -> None:
        started = time.monotonic()
        try:
            status = session.get(f"{url}/lookup/{book_id}", timeout=10).status_code
        except requests.RequestException:
            status = 0
        ok = status == 200
        self._note("GET /lookup/[id]", started, status, ok)
        with self._lock:
            self.reads += 1
            self.read_failures += not ok

    def _buy(self, session: requests.Session, url: str, buy: Buy, patience: float = 30.0) -> None:
        """Retry with the same key until an answer, for up to `patience` seconds."""
        if buy.multi:
            route, path = "POST /orders", f"{url}/orders"
            body = {"items": [{"book_id": b, "quantity": q} for b, q in buy.lines]}
        else:
            ((book_id, quantity),) = buy.lines
            route, path, body = "POST /buy/[id]", f"{url}/buy/{book_id}", {"quantity": quantity}
        deadline = time.monotonic() + patience
        for attempt in itertools.count():
            if time.monotonic() > deadline:
                return
            started = time.monotonic()
            try:
                response = session.post(
                    path, json=body, headers={"Idempotency-Key": buy.key}, timeout=15
                )
            except requests.RequestException:
                response = None
            status = 0 if response is None else response.status_code
            self._note(route, started, status, status in (201, 410))
            if status in (201, 410):
                _answered(buy, status, _body(response))
                return
            if response is not None and status not in RETRYABLE:
                buy.status = f"error {status}"
                return
            time.sleep(min(0.2 * (attempt + 1), 2.0))


def _body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _answered(buy: Buy, status: int, body: dict) -> None:
    """Note what a 201 or 410 told the client: the order, its prices and total, short books."""
    buy.ended = time.monotonic()
    buy.order_id = body.get("order_id")
    if status == 410:
        buy.status = "rejected"
        buy.short = tuple(body.get("books") or ())
        return
    buy.status = "ok"
    buy.total = body.get("total")
    try:
        lines = [(x["book_id"], x["quantity"], x["unit_price"]) for x in body.get("items") or ()]
        buy.items = tuple(sorted(lines))
    except (KeyError, TypeError):  # a malformed 201: the checker names the mismatch
        buy.items = (("malformed", body.get("items")),)


def heal(cluster: LocalCluster, timeout: float = 60.0) -> float:
    """Every link back, every node up, nothing pending or undelivered, replicas identical.

    Returns the seconds from every node being up (the faults over, the holder
    reachable) to every replica identical (design §7 rule 9: at most 10 s)."""
    if cluster.netns:
        cluster.bazar("heal")
    for name in cluster.cluster.nodes:
        if cluster.state(name) == "down":
            cluster.start(name, wait=False)
    for name in cluster.cluster.nodes:
        cluster.wait_state(name, "up", timeout=timeout)
    up = time.monotonic()
    cluster.wait_converged(timeout)
    converged = time.monotonic() - up

    def left() -> dict:
        """What has not drained yet, by node (empty once settled)."""
        pending = {
            n: cluster.rows(n, "SELECT COUNT(*) FROM orders WHERE status = 'pending'")[0][0]
            for n in cluster.names("order")
        }
        outbox = {
            n: cluster.rows(n, "SELECT COUNT(*) FROM outbox")[0][0]
            for n in cluster.names("catalog") + cluster.names("order")
        }
        queues = cluster.call("recovery-1", "GET", "/health").json()["queues"]
        return {
            what: {n: count for n, count in counts.items() if count}
            for what, counts in (("pending", pending), ("outbox", outbox), ("queued", queues))
            if any(counts.values())
        }

    try:
        wait_until(lambda: not left(), timeout, "pending orders, outboxes and queues to drain")
    except AssertionError as e:
        raise AssertionError(f"{e}: left {left()}\n{cluster.log_tails(25)}") from None
    cluster.wait_converged(timeout)
    return converged


def check(
    cluster: LocalCluster,
    initial: dict[int, int],
    buys: list[Buy],
    known_prices: dict[int, set[Decimal]] | None = None,
) -> list[str]:
    """Every invariant of design §7 and of the order ledger that can be read off the
    replicas' files, and what the clients were told against what the replicas hold."""
    violations = []
    result = cluster.check()
    if result.returncode != 0:
        violations.append(f"replicas differ:\n{result.stdout}")
    problems, replicas = ledger.check(cluster, initial, known_prices)
    violations += problems
    for replica in replicas.values():
        violations += ledger.capped(told_vs_held(buys, replica))
    return violations


def told_vs_held(buys: list[Buy], replica: ledger.OrderReplica) -> list[str]:
    """Every 201 is exactly one confirmed order with the lines asked for, at the prices and
    total the client was shown; every 410 a rejected one; no confirmed order nobody placed."""
    problems, acked_ids = [], Counter()
    for buy in buys:
        order_id = buy.order_id or order_id_for(buy.key)
        row = replica.orders.get(order_id)
        status = row[3] if row else "missing"
        what = f"{replica.name}: {buy.kind} {buy.key} (order {order_id})"
        if buy.status == "ok":
            acked_ids[order_id] += 1
            if status != "confirmed":
                problems.append(f"{what} was acknowledged (201) but is {status}")
            else:
                problems += _as_told(what, buy, replica.lines.get(order_id, []))
        elif buy.status == "rejected":
            if status != "rejected":
                problems.append(f"{what} answered 410 but is {status}")
            if buy.multi and not (buy.short and set(buy.short) <= {b for b, _ in buy.lines}):
                problems.append(f"{what} answered 410 naming books {list(buy.short)}")
        elif buy.status != "unknown":
            problems.append(f"{what} got {buy.status}")
    problems += [
        f"{replica.name}: order {o} acknowledged {n} times" for o, n in acked_ids.items() if n > 1
    ]
    placed = {b.order_id or order_id_for(b.key) for b in buys if b.status in ("ok", "unknown")}
    problems += [
        f"{replica.name}: confirmed order {o} that no client was acknowledged or left waiting for"
        for o in sorted(set(replica.confirmed()) - placed)
    ]
    return problems


def _as_told(what: str, buy: Buy, stored: list[ledger.Line]) -> list[str]:
    problems = []
    if tuple((b, q) for b, q, _ in stored) != buy.lines:
        problems.append(f"{what}: asked for {list(buy.lines)}, confirmed with {stored}")
    if buy.multi and buy.items != tuple(stored):
        problems.append(f"{what}: the 201 showed lines {list(buy.items)}, replicas hold {stored}")
    try:
        told = Decimal(str(buy.total))
    except InvalidOperation:
        told = None
    if told is None or not ledger.PRICE.match(str(buy.total)) or told != ledger.amount(stored):
        problems.append(
            f"{what}: the 201 showed total {buy.total!r}, its lines make {ledger.amount(stored)}"
        )
    return problems


def fault_minimum(
    duration: float, interval: float, downtime: float, kinds: tuple[str, ...], rounds: int
) -> int:
    """Faults of each kind a run must make: at least `rounds`, and half its share of the
    run's length when a fault takes `interval` or, if undoing it takes longer, up to
    `downtime` + UNDO_ALLOWANCE. Half: on a loaded host (the suite shares 2 cores with
    whatever else runs) a killed node can take several times as long to come back."""
    period = max(interval, downtime + UNDO_ALLOWANCE)
    return max(rounds, int(duration / period / len(kinds) / 2))


def run(
    cluster: LocalCluster,
    duration: float,
    clients: int = 6,
    interval: float = 4.0,
    downtime: float = 2.0,
    stock: dict[int, int] | None = None,
    seed: int = 0,
    rounds: int = 1,
    kinds: tuple[str, ...] = ("kill",),
    price_books: tuple[int, ...] = (),
    recorder=None,
    extra: dict | None = None,
) -> Report:
    """Load and nemesis for `duration` seconds and at least `fault_minimum` faults of
    every kind, whichever is later (capped at 3x duration); then heal and check. The
    `recorder` (see Clients) gets every buy and lookup attempt."""
    prices = PriceTraffic(cluster, list(price_books))
    for book_id, quantity in (stock or {}).items():
        prices.set_stock(book_id, quantity)  # as admin: an audit entry like any staff write
    books = cluster.rows("catalog-1", "SELECT id, quantity, cost FROM books")
    initial = {book_id: quantity for book_id, quantity, _ in books}
    load = Clients(cluster, clients, sorted(initial), seed, recorder)
    prices.make_staff()  # the accounts, as admin, and every member signed in
    searches = SearchTraffic(prices, seed=seed)
    searches.prepare()  # the librarian and its books
    nemesis = MixedNemesis(cluster, kinds, interval, downtime, seed, extra=extra)
    minimum = fault_minimum(duration, interval, downtime, kinds, rounds)
    load.start()
    prices.start(initial={book_id: cost for book_id, _, cost in books})
    searches.start()
    nemesis.start()
    started = prices.history.origin = time.monotonic()
    while time.monotonic() - started < duration or nemesis.short_of(minimum):
        if time.monotonic() - started > 3 * duration or nemesis.errors:
            break
        time.sleep(0.2)
    nemesis.stop()
    ended = time.monotonic()
    problems = load.stop() + prices.stop() + nemesis.errors
    problems += [
        f"the nemesis made {made} {kind} faults, fewer than {minimum}"
        for kind, made in nemesis.short_of(minimum).items()
    ]
    converged = heal(cluster)
    if converged > CONVERGE_WITHIN:
        problems.append(
            f"replicas identical only {converged:.1f} s after every node was up again "
            f"(more than {CONVERGE_WITHIN:.0f} s)"
        )
    known = {book_id: {ledger.cents(cost)} for book_id, _, cost in books}
    for write in prices.history.writes:  # acknowledged or not: either may have happened
        known[write.book_id].add(ledger.cents(write.price))
    report = _report(cluster, load, prices, nemesis, (started, ended))
    _search_checks(report, searches)
    report.fault_minimum = minimum
    report.violations += problems + check(cluster, initial, load.buys, known)
    trail_problems, trail = audit_trail.check(cluster, prices.log, set(initial))
    report.violations += trail_problems
    _staff_figures(report, prices.log, trail)
    report.settled = time.monotonic() - ended
    report.converged = converged
    return report


def _report(cluster, load, prices, nemesis, span) -> Report:
    report = Report(
        made=nemesis.made,
        kills=nemesis.kills,
        partitions=nemesis.partitions,
        reads=load.reads,
        read_failures=load.read_failures,
        span=span,
        faults=list(nemesis.events),
        price_history=prices.history,
    )
    report.acked = sum(b.status == "ok" for b in load.buys)
    report.rejected = sum(b.status == "rejected" for b in load.buys)
    report.unknown = sum(b.status == "unknown" for b in load.buys)
    for buy in load.buys:
        report.by_kind.setdefault(buy.kind, Counter())[buy.status] += 1
    held = ledger.read_orders(cluster, cluster.names("order")[0])
    for buy in load.buys:
        if buy.status == "unknown":
            row = held.orders.get(buy.order_id or order_id_for(buy.key))
            report.unknown_ended[row[3] if row else "never placed"] += 1
    confirmed = held.confirmed()
    report.orders_confirmed = len(confirmed)
    report.order_lines = sum(len(held.lines.get(o, [])) for o in confirmed)
    report.revenue = ledger.revenue(held)
    staff_acks = [w.ended for w in prices.log.writes if w.outcome == "acked"]
    acks = sorted([b.ended for b in load.buys if b.status == "ok"] + staff_acks)
    report.longest_pause = longest_gap(acks, *span)
    _price_checks(report, prices)
    return report


def _staff_figures(report: Report, log: StaffLog, trail: audit_trail.TrailFigures) -> None:
    """Staff writes per account and outcome, sign-ins, 401s, and the trail's entries."""
    outcomes = log.outcomes()
    report.staff_acked = Counter({name: c["acked"] for name, c in outcomes.items()})
    report.staff_refused = sum(c["refused"] for c in outcomes.values())
    report.staff_unknown = sum(c["unknown"] for c in outcomes.values())
    report.staff_unauthorized = len(log.unauthorized)
    report.sign_ins = sum(log.sign_ins.values())
    report.audit_entries = trail.entries
    report.audit_by_staff = trail.by_staff
    report.audit_unknown = (trail.unknown_landed, trail.unknown)
    report.staff_writes = list(log.writes)


def _search_checks(report: Report, searches: SearchTraffic) -> None:
    """Searches (topic pages and words) that showed a book as it was before an
    acknowledged withdraw, restore or rename; and any (front-end, mode, kind) never
    searched."""
    history = searches.history
    report.search_changes = sum(c.acked for c in history.changes)
    report.searches = len(history.searches)
    report.search_failures = searches.failures
    stale = stale_searches(history)
    report.stale_searches = len(stale)
    unsearched = [f"no search answered: {combo}" for combo in searches.unsearched()]
    report.violations += stale[:20] + unsearched


def _price_checks(report: Report, prices: PriceTraffic) -> None:
    """The price readers' figures, and every read that was stale, read a value nobody
    wrote or went back in time, and every (front-end, book, mode) never read."""
    history = prices.history
    report.price_writes = history.acked_writes()
    report.price_reads = len(history.reads)
    report.price_read_failures = prices.read_failures
    stale = stale_reads(history)
    wrong = unwritten_reads(history) + backward_reads(history)
    report.stale_reads, report.wrong_reads = len(stale), len(wrong)
    strict = backward_reads(history, allow_in_flight=False)
    report.in_flight_backward = len(strict) - len(backward_reads(history))
    unread = [f"no read answered for {combo}" for combo in prices.unread()]
    report.violations += stale[:20] + wrong[:20] + unread
