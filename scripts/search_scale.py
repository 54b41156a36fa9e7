#!/usr/bin/env python3
"""Word search and topic pages on a catalog of real size (issue 23, docs/performance.md).

    .venv/bin/python scripts/search_scale.py [--titles 100000] [--queries 400] [--keep F]

Fills ONE catalog database file directly (the catalog's own tables and its
search index and triggers, `catalog.search.install`, before the rows go in,
so every row passes through the triggers as a write would), with titles of 3-8
words drawn from a 5,000-word vocabulary by a Zipf-like law and 500 topics.
Then it times the catalog's own queries (`catalog.search`; a word search opens
a connection of its own, as a catalog node does): word searches of one or two
words (common and rare ones alike, first page of 100), a topic's first page,
and a topic page deep in its list (by cursor). It prints p50/p99 of each, what
the index costs on disk (SQLite's dbstat: the pages of the books_fts shadow
tables) per 100,000 titles, and how long a database made before the index
takes to build it at start (`rebuild`).
No HTTP: this is the database's share of a search; the hop through the
front-end and a catalog adds what `make bench` measures for any read.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog import search  # noqa: E402
from catalog.models import db  # noqa: E402
from catalog.replica import books  # noqa: E402
from common.pages import ID_KEY, decode  # noqa: E402
from scripts.timing import timed  # noqa: E402

SYLLABLES = "ka lo mi ne ru sa ti vo ze ba de fi go hu ja ke li mo nu pa re so tu".split()


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def zipf_pick(rng: random.Random, words: list[str]) -> str:
    """Common words often, rare ones seldom (rank r with weight ~ 1/r)."""
    return words[min(int(len(words) ** rng.random()) - 1, len(words) - 1)]


def fill(path: Path, titles: int, rng: random.Random, words: list[str], topics: list[str]):
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    search.install(engine)
    batch = 5000
    with engine.begin() as conn:
        for start in range(1, titles + 1, batch):
            rows = [
                {
                    "id": i,
                    "title": " ".join(zipf_pick(rng, words) for _ in range(rng.randint(3, 8))),
                    "topic": rng.choice(topics),
                    "cost": 10.0,
                    "quantity": 5,
                    "version": 1,
                    # one book in fifty withdrawn, as a shop's list would have
                    "deleted_at": "2026-12-02T00:00:00.000+00:00" if i % 50 == 0 else None,
                }
                for i in range(start, min(start + batch, titles + 1))
            ]
            conn.execute(insert(books), rows)
    return engine


def figures(name: str, took: list[float]) -> str:
    took = sorted(took)
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return f"{name:<34} p50 {statistics.median(took):7.2f} ms   p99 {p99:7.2f} ms   ({len(took)})"


def fts_bytes(engine) -> tuple[int, int]:
    """(bytes of the books_fts shadow tables, bytes of the whole file)."""
    with engine.connect() as conn:
        index = conn.exec_driver_sql(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'books_fts%'"
        ).scalar_one()
        whole = conn.exec_driver_sql("SELECT sum(pgsize) FROM dbstat").scalar_one()
    return index, whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()
    # made-up titles, nothing secret
    rng = random.Random(args.seed)  # noqa: S311  # nosec B311
    words = vocabulary(rng, 5000)
    topics = [f"{zipf_pick(rng, words)} {i}" for i in range(500)]
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "catalog.sqlite3"
        started = time.perf_counter()
        engine = fill(path, args.titles, rng, words, topics)
        print(f"filled {args.titles:,} titles in {time.perf_counter() - started:.1f} s")
        index, whole = fts_bytes(engine)
        per = 100_000 / args.titles
        print(
            f"search index {index / 1e6:.1f} MB of {whole / 1e6:.1f} MB "
            f"({index / whole:.0%}); per 100,000 titles {index * per / 1e6:.1f} MB"
        )
        started = time.perf_counter()
        with engine.begin() as conn:  # what a database made before the index costs at start
            conn.exec_driver_sql("INSERT INTO books_fts(books_fts) VALUES ('rebuild')")
        print(f"index rebuilt from the rows in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            report(conn, str(path), rng, words, topics, args.queries)
        engine.dispose()
    return 0


def report(
    conn, path: str, rng: random.Random, words: list[str], topics: list[str], count: int
) -> None:
    def one_word():
        search.words_page(path, zipf_pick(rng, words), 100, None)

    def two_words():
        search.words_page(path, f"{zipf_pick(rng, words)} {zipf_pick(rng, words)}", 100, None)

    def rare_prefix():
        search.words_page(path, rng.choice(words)[:3], 100, None)

    def topic_first():
        search.topic_page(conn, rng.choice(topics), 100, None)

    def topic_deep():
        topic = rng.choice(topics)
        _, cursor = search.topic_page(conn, topic, 150, None)
        if cursor:  # the second page, past the first 150 books of the topic
            search.topic_page(conn, topic, 100, decode(cursor, ID_KEY))

    for _ in range(20):  # warm the page cache as a running node's would be
        one_word(), topic_first()
    print(figures("word search, one word (Zipf)", timed(one_word, count)))
    print(figures("word search, two words (AND)", timed(two_words, count)))
    print(figures("word search, 3-letter prefix", timed(rare_prefix, count)))
    print(figures("topic page, first", timed(topic_first, count)))
    print(figures("topic page 1 + page 2 by cursor", timed(topic_deep, count)))


if __name__ == "__main__":
    sys.exit(main())
