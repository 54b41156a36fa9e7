"""`bazar report`'s table (common/ops/report.py): columns, total, warning, clean text."""

from __future__ import annotations

import argparse
import re
from datetime import date

import pytest

from common.ops.report import TITLE_WIDTH, day_arg, render


def book_report(**changes) -> dict:
    return {
        "from": "2026-11-23",
        "to": "2026-11-23",
        "by": "book",
        "rows": [
            {
                "book_id": 1,
                "title": "RPCs for Dummies",
                "orders": 2,
                "copies": 3,
                "revenue": "120.00",
            },
            {"book_id": 12, "title": "Spring", "orders": 1, "copies": 10, "revenue": "0.10"},
        ],  # fmt: skip
        "total": {"orders": 2, "copies": 13, "revenue": "120.10"},
        "complete": True,
        "notes": [],
        "node": "order-1",
        **changes,
    }


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_by_book_has_a_row_per_book_and_a_total_line():
    lines = render(book_report())
    assert lines[0] == "Revenue 2026-11-23 (UTC), by book; answered by order-1"
    assert "NOT COMPLETE" not in "\n".join(lines)
    table = [cells(line) for line in lines if line.strip() and not line.startswith("-")]
    assert table[1:] == [
        ["book", "title", "orders", "copies", "revenue"],
        ["1", "RPCs for Dummies", "2", "3", "120.00"],
        ["12", "Spring", "1", "10", "0.10"],
        ["total", "2", "13", "120.10"],
    ]


def test_figures_line_up_on_the_right_and_titles_on_the_left():
    lines = [line for line in render(book_report()) if line[:1] in (" ", "t", "b")]
    header, first, second, total = lines[-4], lines[-3], lines[-2], lines[-1]
    assert len({len(line) for line in (header, first, second, total)}) == 1
    assert first.index("RPCs") == second.index("Spring") == header.index("title")
    assert first.endswith("120.00") and second.endswith("  0.10") and total.endswith("120.10")


def test_by_day():
    report = book_report(
        by="day",
        to="2026-11-24",
        rows=[
            {"day": "2026-11-23", "orders": 1, "copies": 3, "revenue": "120.00"},
            {"day": "2026-11-24", "orders": 1, "copies": 10, "revenue": "0.10"},
        ],
    )
    lines = render(report)
    assert lines[0].startswith("Revenue 2026-11-23 to 2026-11-24 (UTC), by day")
    table = [cells(line) for line in lines[2:] if not line.startswith("-")]
    assert table == [
        ["day", "orders", "copies", "revenue"],
        ["2026-11-23", "1", "3", "120.00"],
        ["2026-11-24", "1", "10", "0.10"],
        ["total", "2", "13", "120.10"],
    ]


def test_an_incomplete_report_warns_with_its_notes():
    notes = ["order-2 did not answer: it may hold orders not replicated here"]
    lines = render(book_report(complete=False, notes=notes))
    assert lines[1].startswith("NOT COMPLETE")
    assert lines[2] == f"  - {notes[0]}"
    assert "(no reason given)" in "\n".join(render(book_report(complete=False, notes=[])))


def test_no_orders_says_so():
    zero = {"orders": 0, "copies": 0, "revenue": "0.00"}
    lines = render(book_report(rows=[], total=zero))
    assert "(no confirmed orders)" in lines
    assert cells(lines[-1]) == ["total", "0", "0", "0.00"]


def test_long_unknown_and_unsafe_titles():
    rows = [
        {"book_id": 1, "title": "x" * 100, "orders": 1, "copies": 1, "revenue": "1.00"},
        {"book_id": 2, "title": None, "orders": 1, "copies": 1, "revenue": "1.00"},
        {"book_id": 3, "title": "red\x1b[31m\x9b", "orders": 1, "copies": 1, "revenue": "1.00"},
    ]
    text = "\n".join(render(book_report(rows=rows)))
    assert "x" * (TITLE_WIDTH - 1) + "…" in text and "x" * TITLE_WIDTH not in text
    assert cells(next(line for line in text.splitlines() if line.strip().startswith("2")))[1] == "?"
    assert "\x1b" not in text and "\x9b" not in text and "red?[31m?" in text


@pytest.mark.parametrize("text", ["2026-02-30", "2026-1-5", "20261123", "today", ""])
def test_day_arg_takes_only_yyyy_mm_dd(text):
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        day_arg(text)


def test_day_arg():
    assert day_arg("2024-02-29") == date(2024, 2, 29)
