"""Exact money: whole-cent prices, decimal sums, the CSV export's escaping, report periods."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from common import money
from common.fields import Price
from frontend.csv_export import to_csv


class PriceBody(Schema):
    price = Price(required=True)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (19.99, 19.99),
        (5, 5.0),
        (0.1 + 0.2, 0.3),
        (57 * 0.01, 0.57),
        (999_999_999.99, 999_999_999.99),
    ],
)
def test_a_price_in_whole_cents_is_taken_float_noise_and_all(sent, kept):
    assert PriceBody().load({"price": sent})["price"] == kept


@pytest.mark.parametrize("sent", [19.999, 0.001, 0, -1, 1e10, "19.99", True])
def test_a_price_finer_than_a_cent_or_out_of_range_is_refused(sent):
    with pytest.raises(ValidationError):
        PriceBody().load({"price": sent})


def test_sums_are_exact_where_floats_drift():
    lines = [{"quantity": 1, "unit_price": "0.10"} for _ in range(10)]
    lines += [{"quantity": 3, "unit_price": money.text(19.99)}]
    assert sum(0.1 for _ in range(10)) != 1.0  # what a float total would get wrong
    assert money.total(lines) == Decimal("60.97")
    assert money.text(money.total(lines)) == "60.97"


def test_money_leaves_as_two_place_text():
    assert money.text(50) == "50.00"
    assert money.text(12.5) == "12.50"
    assert money.text(Decimal("1234.5")) == "1234.50"
    assert money.exact(19.99) == Decimal(
        "19.99"
    )  # not 19.989999999999998436805981327779591083526611328125


def test_a_csv_cell_a_spreadsheet_would_run_is_escaped_and_quoting_is_proper():
    rows = [
        {"id": 1, "title": '=HYPERLINK("http://x","y")', "cost": 5.0},
        {"id": 2, "title": "+1", "cost": 1.0},
        {"id": 3, "title": "-2, or so", "cost": 2.5},
        {"id": 4, "title": "@SUM(A1)", "cost": 3.0},
        {"id": 5, "title": "\tTAB", "cost": None},
        {"id": 6, "title": 'plain "quoted", text', "cost": 4.0},
    ]
    text = to_csv(["id", "title", "cost"], rows)
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["id", "title", "cost"]
    titles = [row[1] for row in parsed[1:]]
    assert titles == [
        '\'=HYPERLINK("http://x","y")',
        "'+1",
        "'-2, or so",
        "'@SUM(A1)",
        "'\tTAB",
        'plain "quoted", text',
    ]
    assert [row[2] for row in parsed[1:]] == ["5.0", "1.0", "2.5", "3.0", "", "4.0"]
