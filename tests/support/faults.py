"""A Jepsen-style bank/counter test for Bazar, in Python: clients, a nemesis, a checker.

Clients buy random books with unique idempotency keys through every
front-end and retry like real clients (same key). Staff raise the prices of
a few books while readers read them (tests/support/staff.py). A nemesis
SIGKILLs nodes and, on a `--netns` cluster, cuts the network
(tests/support/nemesis.py). Afterwards the cluster heals, and the checker
reads every replica's SQLite file and checks the invariants of design §7,
and the client history for stale reads.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.support.cluster import LocalCluster, wait_until
from tests.support.history import History, longest_gap, stale_reads
from tests.support.nemesis import MixedNemesis
from tests.support.staff import PriceTraffic

RETRYABLE = {502, 503, 504}


@dataclass
class Buy:
    key: str
    book_id: int
    quantity: int
    status: str = "unknown"  # ok (201) | rejected (410) | unknown (no answer after retries)
    order_id: str | None = None
    ended: float = 0.0  # monotonic time of the answer


@dataclass
class Report:
    acked: int = 0
    rejected: int = 0
    unknown: int = 0
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

    def table(self) -> str:
        rows = [
            ("kills", sum(self.kills.values())),
            ("  by node", ", ".join(f"{k}={v}" for k, v in sorted(self.kills.items())) or "-"),
            ("partitions", sum(self.partitions.values())),
            ("  by kind", ", ".join(f"{k}={v}" for k, v in sorted(self.partitions.items())) or "-"),
            ("acknowledged buys (201)", self.acked),
            ("out of stock (410)", self.rejected),
            ("unknown after retries", f"{self.unknown} ({self.unknown_ratio:.2%} of acked)"),
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
            buy = Buy(f"fault-{uuid.uuid4()}", book_id, rng.choice((1, 1, 1, 2, 3)))
            self._buy(session, url, buy)
            with self._lock:
                self.buys.append(buy)

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
        deadline = time.monotonic() + patience
        for attempt in itertools.count():
            if time.monotonic() > deadline:
                return
            started = time.monotonic()
            try:
                response = session.post(
                    f"{url}/buy/{buy.book_id}",
                    json={"quantity": buy.quantity},
                    headers={"Idempotency-Key": buy.key},
                    timeout=15,
                )
            except requests.RequestException:
                response = None
            status = 0 if response is None else response.status_code
            self._note("POST /buy/[id]", started, status, status in (201, 410))
            if response is not None and response.status_code == 201:
                buy.status, buy.order_id = "ok", response.json()["order_id"]
                buy.ended = time.monotonic()
                return
            if response is not None and response.status_code == 410:
                buy.status = "rejected"
                return
            if response is not None and response.status_code not in RETRYABLE:
                buy.status = f"error {response.status_code}"
                return
            time.sleep(min(0.2 * (attempt + 1), 2.0))


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


def check(cluster: LocalCluster, initial: dict[int, int], buys: list[Buy]) -> list[str]:
    """Every invariant of design §7 that can be read off the replicas' files."""
    violations = []
    catalogs, orders = cluster.names("catalog"), cluster.names("order")
    result = cluster.check()
    if result.returncode != 0:
        violations.append(f"replicas differ:\n{result.stdout}")
    stock = {r[0]: r[1] for r in cluster.rows(catalogs[0], "SELECT id, quantity FROM books")}
    rows = cluster.rows(orders[0], "SELECT order_id, book_id, quantity, status FROM orders")
    confirmed = {r[0]: r for r in rows if r[3] == "confirmed"}
    violations += [f"book {b}: stock {q} < 0" for b, q in stock.items() if q < 0]
    violations += [
        f"order {r[0]} still {r[3]}" for r in rows if r[3] not in ("confirmed", "rejected")
    ]
    for book_id, before in initial.items():
        sold = sum(r[2] for r in confirmed.values() if r[1] == book_id)
        if before - stock[book_id] != sold:
            violations.append(
                f"book {book_id}: stock fell {before - stock[book_id]}, "
                f"confirmed orders sum to {sold}"
            )
    for buy in buys:
        if buy.status == "ok" and buy.order_id not in confirmed:
            violations.append(f"acknowledged buy {buy.key} has no confirmed order")
        elif buy.status == "ok" and confirmed[buy.order_id][1:3] != (buy.book_id, buy.quantity):
            violations.append(f"acknowledged buy {buy.key} confirmed with other book/quantity")
        if buy.status == "rejected" and buy.order_id in confirmed:
            violations.append(f"buy {buy.key} answered 410 but is confirmed")
        if buy.status.startswith("error"):
            violations.append(f"buy {buy.key} got {buy.status}")
    return violations


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
    initial = {r[0]: r[1] for r in cluster.rows("catalog-1", "SELECT id, quantity FROM books")}
    load = Clients(cluster, clients, sorted(initial), seed, recorder)
    prices = PriceTraffic(cluster, list(price_books))
    nemesis = MixedNemesis(cluster, kinds, interval, downtime, seed)
    load.start()
    prices.start()
    nemesis.start()
    started = time.monotonic()
    enough = rounds * len(kinds)
    while time.monotonic() - started < duration or nemesis.count < enough:
        if time.monotonic() - started > 3 * duration:
            break
        time.sleep(0.2)
    nemesis.stop()
    ended = time.monotonic()
    load.stop()
    prices.stop()
    heal(cluster)
    return _report(cluster, initial, load, prices, nemesis, (started, ended))


def _report(cluster, initial, load, prices, nemesis, span) -> Report:
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
    report.price_writes = prices.history.acked_writes()
    report.price_reads = len(prices.history.reads)
    acks = sorted([b.ended for b in load.buys if b.status == "ok"] + prices.history.ack_times())
    report.longest_pause = longest_gap(acks, *span)
    stale = stale_reads(prices.history)
    report.stale_reads = len(stale)
    report.violations = check(cluster, initial, load.buys) + stale[:20]
    return report
