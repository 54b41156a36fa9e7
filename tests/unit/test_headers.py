"""Response headers read without the email package give the standard library's message."""

from __future__ import annotations

import http.client
import io
import random

import pytest

from common.webkit import headers

GUNICORN = (
    b"Server: gunicorn\r\nDate: Thu, 03 Dec 2026 00:55:26 GMT\r\nConnection: keep-alive\r\n"
    b"Content-Type: application/json\r\nContent-Length: 523\r\n\r\n"
)
ODD = [
    b"X-Folded: one\r\n  two\r\n\r\n",  # a continuation line
    b"From someone\r\nX: y\r\n\r\n",  # a mbox From line
    b"No colon here\r\nX: y\r\n\r\n",
    b"Spaced name : v\r\n\r\n",
    b": no name\r\n\r\n",
    b"X: y\r\n",  # the connection closed before the blank line
    b"",
]


def both(raw: bytes):
    return (
        http.client.parse_headers(io.BytesIO(raw)),
        headers.parse_headers(io.BytesIO(raw)),
    )


def same(raw: bytes) -> None:
    want, got = both(raw)
    assert got._headers == want._headers, raw
    assert got.get_payload() == want.get_payload(), raw
    assert type(got) is type(want)
    assert got.get_all("x") == want.get_all("x")
    assert got.get_content_type() == want.get_content_type()


def test_gunicorns_answer_reads_the_same():
    same(GUNICORN)
    want, got = both(GUNICORN)
    assert got["content-length"] == "523" and got.get("Connection") == "keep-alive"


@pytest.mark.parametrize("raw", ODD)
def test_anything_but_plain_lines_reads_the_same(raw):
    same(raw)


def test_random_header_blocks_read_the_same():
    rng = random.Random(23)
    alphabet = b"aZ-_:; \t\x7f\xe9=,/\"'0"
    for _ in range(3000):
        lines = []
        for _ in range(rng.randrange(6)):
            name = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))
            value = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))
            sep = rng.choice([b":", b": ", b":\t", b""])
            end = rng.choice([b"\r\n", b"\n"])
            lines.append(name + sep + value + end)
        same(b"".join(lines) + rng.choice([b"\r\n", b"\n", b""]))


def test_the_standard_limits_still_hold():
    with pytest.raises(http.client.LineTooLong):
        headers.parse_headers(io.BytesIO(b"X: " + b"a" * 70000 + b"\r\n\r\n"))
    many = b"".join(b"X-%d: y\r\n" % n for n in range(200)) + b"\r\n"
    with pytest.raises(http.client.HTTPException):
        headers.parse_headers(io.BytesIO(many))
