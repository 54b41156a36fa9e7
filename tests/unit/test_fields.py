"""common/fields.py strict fields, and the request schemas built on them."""

import pytest
from marshmallow import Schema, ValidationError

from catalog.schemas import UpdateSchema
from common.fields import MAX_PRICE, MAX_QUANTITY, SQLITE_MAX_INT, StrictInteger, StrictNumber
from frontend.schemas import BuyBodySchema, PriceSchema, QuantitySchema


class IntegerSchema(Schema):
    n = StrictInteger()


class NumberSchema(Schema):
    x = StrictNumber()


def errors(schema, data):
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return caught.value.messages


# -- StrictInteger -------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 7, -7, SQLITE_MAX_INT, -SQLITE_MAX_INT])
def test_strict_integer_accepts_ints(value):
    assert IntegerSchema().load({"n": value}) == {"n": value}


@pytest.mark.parametrize("value", [True, False, "3", 2.5, 3.0, None, [3], {"n": 3}])
def test_strict_integer_rejects_non_integers(value):
    assert "n" in errors(IntegerSchema(), {"n": value})


@pytest.mark.parametrize("value", [SQLITE_MAX_INT + 1, -(2**64), 10**30])
def test_strict_integer_rejects_ints_beyond_sqlite_range(value):
    assert errors(IntegerSchema(), {"n": value}) == {"n": ["is too large"]}


def test_strict_integer_names_the_wrong_type():
    assert errors(IntegerSchema(), {"n": "3"}) == {"n": ["must be an integer, got str"]}


# -- StrictNumber --------------------------------------------------------------


@pytest.mark.parametrize(("value", "loaded"), [(3, 3.0), (2.5, 2.5), (0, 0.0), (-1.25, -1.25)])
def test_strict_number_accepts_ints_and_floats(value, loaded):
    result = NumberSchema().load({"x": value})["x"]
    assert result == loaded
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value", [True, False, "3", "nan", float("nan"), float("inf"), float("-inf"), None]
)
def test_strict_number_rejects_non_numbers_and_non_finite(value):
    assert "x" in errors(NumberSchema(), {"x": value})


def test_strict_number_rejects_int_too_large_for_a_float():
    assert errors(NumberSchema(), {"x": 10**400}) == {"x": ["is too large"]}


# -- frontend PriceSchema ------------------------------------------------------


@pytest.mark.parametrize("price", [0.01, 12, MAX_PRICE])
def test_price_accepts_positive_prices(price):
    assert PriceSchema().load({"price": price}) == {"price": float(price)}


@pytest.mark.parametrize("price", [0, 0.0, -5, MAX_PRICE * 2])
def test_price_rejects_out_of_range(price):
    assert "price" in errors(PriceSchema(), {"price": price})


@pytest.mark.parametrize("price", ["12", True, float("nan")])
def test_price_rejects_non_numbers(price):
    assert "price" in errors(PriceSchema(), {"price": price})


def test_price_is_required():
    assert "price" in errors(PriceSchema(), {})


def test_price_rejects_unknown_fields():
    assert "cost" in errors(PriceSchema(), {"price": 10, "cost": 10})


# -- frontend QuantitySchema ---------------------------------------------------


@pytest.mark.parametrize("quantity", [0, 1, MAX_QUANTITY])
def test_quantity_accepts_non_negative_integers(quantity):
    assert QuantitySchema().load({"quantity": quantity}) == {"quantity": quantity}


@pytest.mark.parametrize("quantity", [-1, MAX_QUANTITY + 1, 2.5, 2.0, "5", True])
def test_quantity_rejects_bad_values(quantity):
    assert "quantity" in errors(QuantitySchema(), {"quantity": quantity})


def test_quantity_is_required():
    assert "quantity" in errors(QuantitySchema(), {})


def test_quantity_rejects_unknown_fields():
    assert "price" in errors(QuantitySchema(), {"quantity": 1, "price": 3})


# -- frontend BuyBodySchema ----------------------------------------------------


def test_buy_quantity_defaults_to_one():
    assert BuyBodySchema().load({}) == {"quantity": 1}


def test_buy_accepts_explicit_quantity():
    assert BuyBodySchema().load({"quantity": 5}) == {"quantity": 5}


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", None])
def test_buy_rejects_bad_quantity(quantity):
    assert "quantity" in errors(BuyBodySchema(), {"quantity": quantity})


def test_buy_rejects_unknown_fields():
    assert "book_id" in errors(BuyBodySchema(), {"quantity": 1, "book_id": 2})


# -- catalog UpdateSchema ------------------------------------------------------


def test_update_rejects_empty_body():
    assert errors(UpdateSchema(), {}) == {"_schema": ["give price or quantity"]}


@pytest.mark.parametrize("body", [{"price": 3}, {"quantity": 0}, {"price": 2.5, "quantity": 10}])
def test_update_accepts_price_quantity_or_both(body):
    assert UpdateSchema().load(body).keys() == body.keys()


@pytest.mark.parametrize("body", [{"price": 0}, {"quantity": -1}, {"price": "3"}, {"stock": 1}])
def test_update_rejects_bad_bodies(body):
    assert errors(UpdateSchema(), body)
