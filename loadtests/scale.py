"""The bench at a catalog of real size (issue 23): `bench.py --titles N --orders M`.

After the usual scenarios on the 7-book seed catalog, the same cluster gets N
titles through `bazar import` (the path an operator uses) and M orders written
straight into every order replica and every catalog's decisions (a bulk load:
a million buys through the API would take most of an hour). Then:

- the lookups and buys again on the loaded cluster, twice: the 7-title run's own
  requests (its 7 books, now among a million), and spread over the whole catalog
  (a hot set of 1000 books for cached lookups and buys, any book for uncached
  lookups); each paired with the same scenario on a 7-title twin (below);
- p50/p99 of a topic search page (a first page and the page after it), a word
  search, and a revenue report for a year by day, one request at a time;
- a backup catalog that missed 100,000 updates (titles imported while it was
  down) rejoining: seconds from its start until it serves reads again;
- disk per node (its SQLite file with WAL).

"Within 10 % of the 7-title run" is judged against a twin: a second cluster with
the seed catalog, started next to the big one once it is loaded. Each scenario
runs PAIRS times on each, alternated (seed, scale, scale, seed, ...), PAIR_S
seconds each, and the share is the median of each pair's req/s at scale over
req/s on the twin. This VM's speed drifts by up to 2x between runs minutes
apart (docs/performance.md, "Queue polls, a backup's index writes, and the bench
at scale"), so a share of two runs a quarter of an hour apart measured the VM;
paired runs seconds apart share its phase, as `ab.py`'s do.

The verdict compares like with like: the twin's requests against the same
requests on the loaded cluster, so the share measures what the catalog's size
costs. The spread runs change two things at once, size and the books asked
for, and are reported beside it, not judged: on 7 titles 16 connections ask
the same books at once, and about 70 % of the uncached lookups join another's
read of the same book (frontend/coalesce.py); among a million titles almost
none can (docs/performance.md, "Uncached lookups at a million: size or spread").
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from common.ops import procs
from loadtests import scalereport, titles
from loadtests.benchkit import (
    _KEYED,
    _THREADS,
    Result,
    combined,
    node_masters,
    stock_up,
    write_script,
)
from tests.support.cluster import LocalCluster, wait_until

HOT = 1000  # books the cached lookups and the buys use, spread over the catalog
SAMPLES = 200  # requests per latency figure
REPORT_SAMPLES = 20
REJOIN_UPDATES = 100_000
ORDER_BATCH = 20_000
SEED_IDS = list(range(1, 8))
PAIRS = 6  # runs of each scenario on each cluster, alternated
PAIR_S = 5  # seconds each
LABELS = {"7 titles": "@7", "scale": "@scale", "spread": "@spread"}  # the sides' run names


@dataclass
class Scale:
    titles: int
    orders: int
    import_s: float = 0.0
    orders_s: float = 0.0
    scenarios: list[Result] = field(default_factory=list)  # each one's runs at scale, summed
    seeds: list[Result] = field(default_factory=list)  # the same on the 7-title twin
    shares: dict[str, list[float]] = field(default_factory=dict)  # name -> each pair's share
    spreads: list[Result] = field(default_factory=list)  # each one spread over the catalog
    spread_shares: dict[str, list[float]] = field(default_factory=dict)  # the same for those
    latencies: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> p50, p99
    rejoin_s: float = 0.0
    rejoin_rows: int = 0
    disk_mb: dict[str, float] = field(default_factory=dict)


def hot_ids(count: int) -> list[int]:
    """HOT book ids spread evenly over 1..count (the seed's 7 first)."""
    step = max(1, count // HOT)
    return sorted({*range(1, 8), *range(1, count + 1, step)})[:HOT]


def scripts(ids: list[int], count: int) -> dict[str, tuple[str, list[str], str]]:
    """name -> (path, extra wrk arguments, Lua) of the scenarios at scale."""
    table = "local ids = {" + ",".join(map(str, ids)) + "}\n"
    lookup = (
        _THREADS
        + table
        + "request = function()\n"
        + '  return wrk.format("GET", "/lookup/" .. ids[math.random(#ids)])\n'
        + "end\n"
    )
    anywhere = _THREADS + (
        f'request = function() return wrk.format("GET", "/lookup/" .. math.random({count})) end\n'
    )
    buy = (
        _KEYED
        + table
        + """
request = function()
  local key = next_key("sbuy")
  return wrk.format("POST", "/buy/" .. ids[math.random(#ids)],
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, '{"quantity": 1}')
end
"""
    )
    order = (
        _KEYED
        + table
        + """
local line = '{"book_id": %d, "quantity": 1}'
request = function()
  local key = next_key("sorder")
  local a = math.random(#ids - 2)
  local body = '{"items": [' .. string.format(line, ids[a]) .. ", "
    .. string.format(line, ids[a + 1]) .. ", " .. string.format(line, ids[a + 2]) .. "]}"
  return wrk.format("POST", "/orders",
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, body)
end
"""
    )
    return {
        "lookup-cached": ("/", [], lookup),
        "lookup-uncached": ("/", ["-H", "Cache-Control: no-cache"], anywhere),
        "buy": ("/", [], buy),
        "order-3": ("/", [], order),
    }


def load_titles(cluster: LocalCluster, count: int, work: Path) -> float:
    """The catalog grows to `count` titles (the 7 seed books are among them): seconds."""
    path = titles.write_file(work / "titles.csv", count - 7)
    took, summary = titles.import_file(cluster.config_path, path)
    print(f"  imported {count - 7:,} titles in {took:.0f} s ({summary})", flush=True)
    return took


def load_orders(cluster: LocalCluster, count: int, books: int, seed: int = 23) -> float:
    """`count` confirmed orders of the past year, written straight into every order
    replica and every catalog's decisions (the same rows everywhere): seconds."""
    rng, began = random.Random(seed), time.monotonic()
    now = datetime.now(UTC)
    orders, decisions = [], []
    for n in range(count):
        book, quantity = rng.randrange(1, books + 1), rng.randrange(1, 4)
        price = f"{rng.randrange(100, 20000) / 100:.2f}"
        total = round(quantity * float(price), 2)
        at = now - timedelta(seconds=rng.randrange(365 * 86400))
        order_id = f"bulk{n:09d}"
        orders.append((order_id, book, quantity, total, at.isoformat(timespec="milliseconds")))
        items = json.dumps([{"book_id": book, "quantity": quantity, "unit_price": price}])
        decisions.append((order_id, book, quantity, total, items, price))
    # Stored in time order, as a shop's orders arrive (a period's rows lie together).
    order = sorted(range(count), key=lambda n: orders[n][4])
    orders, decisions = [orders[n] for n in order], [decisions[n] for n in order]
    for node in cluster.cluster.of("order"):
        _write(cluster.cluster.db_path(node.name), _order_rows, orders, decisions)
    for node in cluster.cluster.of("catalog"):
        _write(cluster.cluster.db_path(node.name), _decision_rows, orders, decisions)
    took = time.monotonic() - began
    print(f"  wrote {count:,} orders into every order and catalog replica in {took:.0f} s")
    return took


def _write(path: Path, rows, orders: list, decisions: list) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        for start in range(0, len(orders), ORDER_BATCH):
            with conn:  # one transaction per batch: the node's own writes go on between
                rows(
                    conn,
                    orders[start : start + ORDER_BATCH],
                    decisions[start : start + ORDER_BATCH],
                )
    finally:
        conn.close()


def _order_rows(conn, orders, decisions) -> None:
    conn.executemany(
        "INSERT INTO orders (order_id, book_id, quantity, total, status, created_at) "
        "VALUES (?, ?, ?, ?, 'confirmed', ?)",
        orders,
    )
    conn.executemany(
        "INSERT INTO order_items (order_id, book_id, quantity, unit_price) VALUES (?, ?, ?, ?)",
        [(d[0], d[1], d[2], d[5]) for d in decisions],
    )


def _decision_rows(conn, orders, decisions) -> None:
    conn.executemany(
        "INSERT INTO order_decisions (order_id, book_id, quantity, status, total, items) "
        "VALUES (?, ?, ?, 'applied', ?, ?)",
        [d[:5] for d in decisions],
    )


def latencies(cluster: LocalCluster, count: int) -> dict[str, tuple[float, float]]:
    """p50, p99 (ms) of a search page, a word search and a year's report by day."""
    session, url, rng = requests.Session(), cluster.api.url, random.Random(5)
    session.trust_env = False
    staff = {"Authorization": f"Bearer {cluster.cluster.staff_token}"}

    def timed(path: str, headers=None) -> tuple[float, requests.Response]:
        began = time.perf_counter()
        answer = session.get(url + path, headers=headers, timeout=60)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
        return (time.perf_counter() - began) * 1000, answer

    pages, words, reports = [], [], []
    for _ in range(SAMPLES // 2):
        took, first = timed(f"/search/{rng.choice(titles.SUBJECTS)}?limit=100")
        pages.append(took)
        nxt = first.links.get("next", {}).get("url")
        if nxt:
            pages.append(timed(nxt.removeprefix(url))[0])
    for _ in range(SAMPLES):
        query = " ".join(rng.sample(titles.WORDS, rng.choice((1, 2))))
        words.append(timed(f"/search?q={query}")[0])
    year = datetime.now(UTC).date()
    report = f"/reports/revenue?from={year - timedelta(days=365)}&to={year}&by=day"
    for _ in range(REPORT_SAMPLES):
        reports.append(timed(report, staff)[0])
    return {
        "search page": _p50_p99(pages),
        "word search": _p50_p99(words),
        "report, a year by day": _p50_p99(reports),
    }


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]


def rejoin(cluster: LocalCluster, books: int, work: Path) -> float:
    """Seconds for a backup catalog that missed REJOIN_UPDATES new titles (imported
    while it was down) to serve reads again after its start."""
    backup = next(
        n.name for n in cluster.cluster.of("catalog") if procs.health(n)[1].get("role") == "backup"
    )
    more = titles.write_file(work / "more.csv", books - 7 + REJOIN_UPDATES)
    tail = work / "missed.csv"
    with more.open(encoding="utf-8") as src, tail.open("w", encoding="utf-8") as out:
        lines = src.readlines()
        out.writelines([lines[0], *lines[1 + books - 7 :]])
    cluster.kill(backup)
    titles.import_file(cluster.config_path, tail)
    began = time.monotonic()
    cluster.start(backup, wait=False)
    node = cluster.node(backup)
    wait_until(lambda: procs.health(node)[1].get("status") == "up", timeout=900, what=backup)
    took = time.monotonic() - began
    print(
        f"  {backup} missed {REJOIN_UPDATES:,} titles: serving reads {took:.1f} s after its start"
    )
    return took


def disk_mb(cluster: LocalCluster) -> dict[str, float]:
    """Each node's SQLite file with its WAL, in MB."""
    sizes = {}
    for name in cluster.cluster.nodes:
        path = cluster.cluster.db_path(name)
        files = [Path(f"{path}{extra}") for extra in ("", "-wal")]
        sizes[name] = sum(f.stat().st_size for f in files if f.exists()) / 2**20
    return sizes


def run(cluster: LocalCluster, work: Path, args, scenario_for, masters: dict, tuning) -> Scale:
    """The scale part of the bench. `scenario_for(cluster, masters)` gives what runs one
    scenario under wrk on that cluster: `(name, path, extra, script, seconds) -> Result`;
    `tuning`: the cluster's, for its 7-title twin. `masters` (node -> master pid) is
    brought up to date after the backup's restart."""
    scale = Scale(args.titles, args.orders)
    print(f"\nat scale: {args.titles:,} titles, {args.orders:,} orders")
    scale.import_s = load_titles(cluster, args.titles, work)
    scale.orders_s = load_orders(cluster, args.orders, args.titles)
    ids = hot_ids(args.titles)
    stock_up(cluster, ids)
    for book_id in ids:
        cluster.api.lookup(book_id)  # the hot set cached
    twin = seed_twin(work, tuning)
    try:
        seed, big = scripts(SEED_IDS, len(SEED_IDS)), scenario_for(cluster, masters)
        sides = {
            "7 titles": (scenario_for(twin, node_masters(twin)), seed),
            "scale": (big, seed),
            "spread": (big, scripts(ids, args.titles)),
        }
        seconds = min(PAIR_S, args.seconds)
        paired(scale, sides, [name for name in seed if name in args.only], seconds, work)
    finally:
        twin.discard()
    scale.latencies = latencies(cluster, SAMPLES)
    for name, (p50, p99) in scale.latencies.items():
        print(f"  {name:<24} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms", flush=True)
    scale.rejoin_rows = REJOIN_UPDATES
    scale.rejoin_s = rejoin(cluster, args.titles, work)
    masters.update(node_masters(cluster))  # the restarted backup's memory is read again
    scale.disk_mb = disk_mb(cluster)
    return scale


def seed_twin(work: Path, tuning) -> LocalCluster:
    """A second cluster with the seed catalog, stocked and its books cached as the big
    one's hot set is."""
    print("  a 7-title twin starts next to it, for the paired runs:", flush=True)
    twin = LocalCluster(work / "seed-twin", tuning=tuning)
    twin.up()
    stock_up(twin, SEED_IDS)
    for book_id in SEED_IDS:
        twin.api.lookup(book_id)
    return twin


def paired(scale: Scale, sides: dict, names: list[str], seconds: int, work: Path) -> None:
    """Each scenario PAIRS times on each side, alternated, `seconds` each: fills `scale`.
    `sides`: "7 titles" (the twin), "scale" (the loaded cluster, the twin's requests) and
    "spread" (the loaded cluster, over the whole catalog), each (its runner, its Lua)."""
    for name in names:
        runs: dict[str, list[Result]] = {side: [] for side in sides}
        for n in range(PAIRS):
            order = list(sides) if n % 2 == 0 else list(reversed(sides))
            for side in order:
                scenario, lua = sides[side]
                path, extra, text = lua[name]
                label = name + LABELS[side]
                runs[side].append(scenario(label, path, extra, write_script(text, work), seconds))
        seed = runs["7 titles"]
        scale.seeds.append(combined(seed))
        scale.scenarios.append(combined(runs["scale"]))
        scale.spreads.append(combined(runs["spread"]))
        scale.shares[name] = shares_of(runs["scale"], seed)
        scale.spread_shares[name] = shares_of(runs["spread"], seed)
        same, spread = (
            scalereport.pairs_text(s[name]) for s in (scale.shares, scale.spread_shares)
        )
        print(f"  {name}: over 7 titles, pairs: the same books {same}; spread {spread}", flush=True)


def shares_of(runs: list[Result], seed: list[Result]) -> list[float]:
    """Each pair's req/s over the twin's."""
    return [b.ok_rps / s.ok_rps if s.ok_rps else 0.0 for s, b in zip(seed, runs, strict=True)]
