"""The price readers read every (front-end, book, cache mode), and a gap is named."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from tests.support.history import Read
from tests.support.staff import MODES, PriceTraffic, read_plan

FRONTENDS = ["http://fe-1", "http://fe-2"]
BOOKS = [1, 2]


def test_every_reader_reads_every_combination_each_lap():
    lap = len(FRONTENDS) * len(BOOKS) * len(MODES)
    for index in range(4):
        turns = list(itertools.islice(read_plan(FRONTENDS, BOOKS, index), lap))
        assert set(turns) == set(itertools.product(FRONTENDS, BOOKS, MODES))
    firsts = {next(read_plan(FRONTENDS, BOOKS, index)) for index in range(4)}
    assert len(firsts) == 4  # readers start at different combinations


def test_readers_that_move_front_end_and_book_together_leave_half_unread():
    fake = SimpleNamespace(names=lambda service: ["frontend-1", "frontend-2"], url_of=None)
    fake.url_of = {"frontend-1": FRONTENDS[0], "frontend-2": FRONTENDS[1]}.get
    traffic = PriceTraffic(fake, BOOKS)
    # The old walk: reader i read front-end (i + turn) % 2 and book turn % 2.
    for index, turn in itertools.product(range(4), range(10)):
        url, book = FRONTENDS[(index + turn) % 2], BOOKS[turn % 2]
        mode = MODES[index % 2]
        traffic.history.reads.append(Read(book, 101.0, 0.0, 0.1, f"{url} {mode}"))
    unread = traffic.unread()
    assert len(unread) == 4 and "book 2 via http://fe-1 cache" in unread
    for url, book, mode in itertools.product(FRONTENDS, BOOKS, MODES):
        traffic.history.reads.append(Read(book, 101.0, 0.0, 0.1, f"{url} {mode}"))
    assert traffic.unread() == []
