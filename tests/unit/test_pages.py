"""common/pages.py: cursors made and read back, refused when not ours, pages cut, Link."""

from __future__ import annotations

import base64

import pytest
from flask import Flask, Response

from common.pages import (
    ID_KEY,
    NOT_A_CURSOR,
    RANK_KEY,
    cut,
    decode,
    encode,
    link_next,
    read_cursor,
)
from common.web import ApiError


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("key", "kinds"),
    [([1], ID_KEY), ([2**63 - 1], ID_KEY), ([-3.25e-06, 17], RANK_KEY), ([0.0, 0], RANK_KEY)],
)
def test_a_cursor_reads_back_as_the_key_it_was_made_of(key, kinds):
    cursor = encode(key)
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode(cursor, kinds) == key


def test_a_rank_keeps_every_bit_through_its_cursor():
    rank = -1.2345678901234567e-05
    assert decode(encode([rank, 3]), RANK_KEY)[0] == rank


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "not base64!",
        "A",  # one character is no base64 at all
        b64("[1"),  # not JSON
        b64('{"id": 1}'),  # not a list
        b64("[]"),
        b64("[1, 2]"),  # two parts for an id list
        b64('["1"]'),
        b64("[true]"),
        b64("[-1]"),
        b64("[1.5]"),
        b64(f"[{2**63}]"),
        b64("[NaN]"),
        b64("[null]"),
        "\u00e9" * 3,
        "A" * 201,
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
    ],
)
def test_anything_else_is_not_a_cursor_of_an_id_list(cursor):
    with pytest.raises(ApiError) as refused:
        decode(cursor, ID_KEY)
    assert (refused.value.status, refused.value.message) == (400, NOT_A_CURSOR)


@pytest.mark.parametrize(
    "cursor", [encode([5]), b64('[1, "2"]'), b64("[Infinity, 2]"), b64("[1.0, 2.5]")]
)
def test_a_cursor_of_another_list_is_refused_by_word_search(cursor):
    with pytest.raises(ApiError) as refused:
        decode(cursor, RANK_KEY)
    assert refused.value.status == 400


def test_cut_gives_the_next_cursor_only_while_more_remain():
    rows = [{"id": i} for i in range(1, 5)]
    by_id = lambda row: [row["id"]]  # noqa: E731
    assert cut(rows, 4, by_id) == (rows, None)
    assert cut(rows, 5, by_id) == (rows, None)
    page, cursor = cut(rows, 3, by_id)
    assert page == rows[:3] and decode(cursor, ID_KEY) == [3]


def test_the_next_link_keeps_every_other_parameter():
    app = Flask(__name__)
    with app.test_request_context("/search?q=dos%20rpc&limit=2&after=old"):
        response = link_next(Response(), {"q": "dos rpc", "limit": "2", "x": None}, "WzNd")
        assert response.headers["Link"] == (
            '<http://localhost/search?q=dos+rpc&limit=2&after=WzNd>; rel="next"'
        )
        assert "Link" not in link_next(Response(), {"q": "x"}, None).headers


@pytest.mark.parametrize("after", ["", "a b", "é", "a+b", "a=", "A" * 201])
def test_the_front_end_refuses_a_cursor_that_cannot_be_one(after):
    app = Flask(__name__)
    with app.test_request_context("/books", query_string={"after": after}):
        with pytest.raises(ApiError) as refused:
            read_cursor()
        assert refused.value.status == 400


def test_the_front_end_passes_a_cursor_on_untouched():
    app = Flask(__name__)
    with app.test_request_context("/books", query_string={"after": "WzEwMF0"}):
        assert read_cursor() == "WzEwMF0"
    with app.test_request_context("/books"):
        assert read_cursor() is None
