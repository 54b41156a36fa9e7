"""common/web.py: strict JSON parsing, flattened validation messages, query integers."""

import pytest
from flask import Flask
from marshmallow import ValidationError

from common.web import ApiError, QueryInt, parse_json, validation_message
from frontend.schemas import PriceSchema


def parse_error(raw):
    with pytest.raises(ApiError) as caught:
        parse_json(raw)
    return caught.value


# -- parse_json ----------------------------------------------------------------


def test_parse_json_accepts_a_plain_object():
    assert parse_json(b'{"price": 12.5, "tags": [1, 2]}') == {"price": 12.5, "tags": [1, 2]}


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_parse_json_rejects_non_finite_constants(constant):
    error = parse_error(b'{"price": ' + constant + b"}")
    assert error.status == 400


def test_parse_json_rejects_duplicate_keys():
    error = parse_error(b'{"quantity": 1, "quantity": 900}')
    assert error.status == 400
    assert "duplicate" in error.message


def test_parse_json_rejects_duplicate_keys_in_nested_objects():
    assert parse_error(b'{"a": {"b": 1, "b": 2}}').status == 400


def test_parse_json_rejects_deep_nesting():
    error = parse_error(b"[" * 100_000)
    assert error.status == 400
    assert "nested" in error.message


def test_parse_json_rejects_invalid_utf8():
    assert parse_error(b'{"title": "\xff\xfe"}').status == 400


def test_parse_json_rejects_malformed_json():
    assert parse_error(b'{"price": ').status == 400


def test_parse_json_rejects_integers_with_too_many_digits():
    assert parse_error(b'{"quantity": ' + b"9" * 5000 + b"}").status == 400


def test_overflowing_number_is_stopped_by_the_schema():
    # 1e400 parses to inf (not a constant); the strict number field must refuse it.
    data = parse_json(b'{"price": 1e400}')
    with pytest.raises(ValidationError):
        PriceSchema().load(data)


# -- validation_message --------------------------------------------------------


def test_validation_message_names_the_field():
    assert validation_message({"price": ["must be a number"]}) == "price: must be a number"


def test_validation_message_joins_fields_with_semicolons():
    message = validation_message({"price": ["bad"], "quantity": ["worse"]})
    assert message == "price: bad; quantity: worse"


def test_validation_message_joins_several_reasons_for_one_field():
    assert validation_message({"price": ["bad.", "really."]}) == "price: bad. really."


def test_validation_message_drops_the_schema_key():
    assert validation_message({"_schema": ["give price or quantity"]}) == "give price or quantity"


def test_validation_message_dots_nested_fields():
    assert validation_message({"order": {"quantity": ["too big"]}}) == "order.quantity: too big"


def test_validation_message_of_a_real_schema_error():
    with pytest.raises(ValidationError) as caught:
        PriceSchema().load({"price": 0, "cost": 1})
    message = validation_message(caught.value.messages)
    assert "price: " in message
    assert "cost: " in message


LIMIT = QueryInt("limit", default=500, low=1, high=5000)


def read_limit(query: str):
    with Flask(__name__).test_request_context(f"/q?{query}"):
        return LIMIT.read()


def test_query_int_default_when_absent():
    assert read_limit("") == 500


@pytest.mark.parametrize("text, value", [("1", 1), ("5000", 5000), ("0042", 42)])
def test_query_int_reads_ascii_digits_in_bounds(text, value):
    assert read_limit(f"limit={text}") == value


@pytest.mark.parametrize(
    "text",
    ["0", "5001", "-1", "1.5", "abc", "", "%C2%B2", "%D9%A3", "1" * 30, "%201", "1e3"],
)
def test_query_int_refuses_anything_else_with_400(text):
    # '²' passes str.isdigit() and then breaks int(): that was a 500. Other scripts'
    # digits ('٣') are refused too: a query number is ASCII.
    with pytest.raises(ApiError) as caught:
        read_limit(f"limit={text}")
    assert caught.value.status == 400
    assert "limit: must be an integer from 1 to 5000" == caught.value.message


def test_query_int_documents_its_bounds():
    assert LIMIT.schema == {"type": "integer", "minimum": 1, "maximum": 5000}


def test_an_api_error_may_carry_a_status_field_of_its_own():
    """A replica's state travels as `status` in the body (a stale backup's 503)."""
    from common.web import install_error_handlers

    app = Flask(__name__)
    install_error_handlers(app)

    @app.get("/stale")
    def stale():
        raise ApiError(503, "no read lease", status="stale", epoch=3)

    response = app.test_client().get("/stale")
    assert response.status_code == 503
    assert response.get_json() == {"message": "no read lease", "status": "stale", "epoch": 3}


def test_a_signed_body_skips_only_the_duplicate_key_check():
    assert parse_json(b'{"a": 1, "a": 2}', signed=True) == {"a": 2}
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(ApiError, match="not valid JSON"):
            parse_json(b'{"a": ' + constant + b"}", signed=True)
