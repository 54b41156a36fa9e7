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
against what the replicas hold, and the client history for stale reads.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import requests

from order.store import order_id_for
from tests.support import ledger
from tests.support.cluster import LocalCluster, wait_until
from tests.support.history import History, longest_gap, stale_reads
from tests.support.nemesis import MixedNemesis
from tests.support.staff import PriceTraffic

RETRYABLE = {502, 503, 504}
MULTI_SHARE = 0.4  # of purchases that are orders of several books


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


@dataclass
class Report:
    acked: int = 0  # purchases of both kinds
    rejected: int = 0
    unknown: int = 0
    # per kind ("single", "multi"): Counter of outcomes ("ok", "rejected", "unknown")
    by_kind: dict[str, Counter] = field(default_factory=dict)
    unknown_ended: Counter = field(default_factory=Counter)  # unanswered: status after heal
    orders_confirmed: int = 0  # on the order replicas after heal, both kinds
    order_lines: int = 0  # order_items lines of the confirmed orders
    revenue: Decimal = Decimal("0.00")  # Σ quantity × unit_price of the confirmed orders
    read_failures: int = 0
    reads: int = 0
    kills: Counter = field(default_factory=Counter)
    partitions: Counter = field(default_factory=Counter)
    price_writes: int = 0
    price_reads: int = 0
    stale_reads: int = 0
    longest_pause: float = 0.0
    violations: list[str] = field(default_factory=list)
    # for timelines (loadtests/timeline.py), monotonic times: the load's span,
    # the nemesis's faults (began, ended, what) and the staff's price history
    span: tuple[float, float] = (0.0, 0.0)
    faults: list[tuple[float, float, str]] = field(default_factory=list)
    price_history: History | None = None

    @property
    def unknown_ratio(self) -> float:
        return self.unknown / max(self.acked, 1)

    def kind(self, kind: str, outcome: str) -> int:
        return self.by_kind.get(kind, Counter())[outcome]

    def _split(self, outcome: str) -> str:
        return f"single {self.kind('single', outcome)}, multi {self.kind('multi', outcome)}"

    def table(self) -> str:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(self.unknown_ended.items())) or "-"
        rows = [
            ("kills", sum(self.kills.values())),
            ("  by node", ", ".join(f"{k}={v}" for k, v in sorted(self.kills.items())) or "-"),
            ("partitions", sum(self.partitions.values())),
            ("  by kind", ", ".join(f"{k}={v}" for k, v in sorted(self.partitions.items())) or "-"),
            ("acknowledged purchases (201)", f"{self.acked} ({self._split('ok')})"),
            ("out of stock (410)", f"{self.rejected} ({self._split('rejected')})"),
            ("unknown after retries", f"{self.unknown} ({self.unknown_ratio:.2%} of acked)"),
            ("  by kind / after heal", f"{self._split('unknown')} / {ended}"),
            ("confirmed orders / lines", f"{self.orders_confirmed} / {self.order_lines}"),
            ("revenue (exact)", str(self.revenue)),
            ("reads / failed reads", f"{self.reads} / {self.read_failures}"),
            ("price writes acked / price reads", f"{self.price_writes} / {self.price_reads}"),
            ("stale reads", self.stale_reads),
            ("longest write pause", f"{self.longest_pause:.2f} s"),
            ("invariant violations", len(self.violations)),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines + [f"  ! {v}" for v in self.violations])


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
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def _run(self, index: int) -> None:
        session = requests.Session()
        session.trust_env = False
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


def heal(cluster: LocalCluster, timeout: float = 60.0) -> None:
    """Every link back, every node up, nothing pending or undelivered, replicas identical."""
    if cluster.netns:
        cluster.bazar("heal")
    for name in cluster.cluster.nodes:
        if cluster.state(name) == "down":
            cluster.start(name, wait=False)
    for name in cluster.cluster.nodes:
        cluster.wait_state(name, "up", timeout=timeout)

    def settled() -> bool:
        pending = sum(
            cluster.rows(n, "SELECT COUNT(*) FROM orders WHERE status = 'pending'")[0][0]
            for n in cluster.names("order")
        )
        outbox = sum(
            cluster.rows(n, "SELECT COUNT(*) FROM outbox")[0][0]
            for n in cluster.names("catalog") + cluster.names("order")
        )
        queues = cluster.call("recovery-1", "GET", "/health").json()["queues"]
        return pending == 0 and outbox == 0 and not any(queues.values())

    wait_until(settled, timeout, "pending orders, outboxes and queues to drain")
    cluster.wait_converged(timeout)


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
) -> Report:
    """Load and nemesis for `duration` seconds and at least `rounds` faults of every
    kind, whichever is later (capped at 3x duration); then heal and check. The
    `recorder` (see Clients) gets every buy and lookup attempt."""
    for book_id, quantity in (stock or {}).items():
        assert cluster.api.set_quantity(book_id, quantity).status_code == 200
    books = cluster.rows("catalog-1", "SELECT id, quantity, cost FROM books")
    initial = {book_id: quantity for book_id, quantity, _ in books}
    costs = {book_id: ledger.cents(cost) for book_id, _, cost in books}
    load = Clients(cluster, clients, sorted(initial), seed, recorder)
    prices = PriceTraffic(cluster, list(price_books))
    nemesis = MixedNemesis(cluster, kinds, interval, downtime, seed)
    load.start()
    prices.start()
    nemesis.start()
    started = time.monotonic()
    enough = rounds * len(kinds)
    while time.monotonic() - started < duration or nemesis.count < enough:
        if time.monotonic() - started > 3 * duration or nemesis.errors:
            break
        time.sleep(0.2)
    nemesis.stop()
    ended = time.monotonic()
    load.stop()
    prices.stop()
    heal(cluster)
    known = {book_id: {cost} for book_id, cost in costs.items()}
    for write in prices.history.writes:  # acknowledged or not: either may have happened
        known[write.book_id].add(ledger.cents(write.price))
    return _report(cluster, initial, known, load, prices, nemesis, (started, ended))


def _report(cluster, initial, known, load, prices, nemesis, span) -> Report:
    report = Report(
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
    report.price_writes = prices.history.acked_writes()
    report.price_reads = len(prices.history.reads)
    acks = sorted([b.ended for b in load.buys if b.status == "ok"] + prices.history.ack_times())
    report.longest_pause = longest_gap(acks, *span)
    stale = stale_reads(prices.history)
    report.stale_reads = len(stale)
    report.violations = nemesis.errors + check(cluster, initial, load.buys, known) + stale[:20]
    return report
