"""common.server.OneSendResponse: a whole body leaves with the headers in one send; what
gunicorn would stream, chunk or drop goes its way. On gunicorn's own objects."""

from __future__ import annotations

from gunicorn.config import Config

from common.server import OneSendResponse


class Socket:
    def __init__(self):
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


class Request:
    version = (1, 1)

    def __init__(self, method: str = "GET"):
        self.method = method

    def should_close(self) -> bool:
        return False


def respond(body_parts, headers, method="GET", status="200 OK"):
    sock = Socket()
    response = OneSendResponse(Request(method), sock, Config())
    response.start_response(status, headers)
    for part in body_parts:
        response.write(part)
    response.close()
    return sock.sends


def test_a_whole_body_leaves_with_its_headers_in_one_send():
    body = b'{"status": "up"}'
    sends = respond([body], [("Content-Type", "application/json"), ("Content-Length", "16")])
    assert len(sends) == 1
    head, _, sent_body = sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 16" in head
    assert b"Connection: keep-alive" in head
    assert sent_body == body


def test_a_body_in_pieces_goes_gunicorns_way_and_arrives_whole():
    sends = respond([b"abc", b"def"], [("Content-Length", "6")])
    assert len(sends) == 3  # headers, then each piece
    assert b"".join(sends).endswith(b"\r\n\r\nabcdef")


def test_no_length_means_chunked_and_head_sends_no_body():
    chunked = respond([b"abc"], [("Content-Type", "text/plain")])
    assert b"Transfer-Encoding: chunked" in chunked[0] and len(chunked) > 1
    head = respond([b"abc"], [("Content-Length", "3")], method="HEAD")
    assert len(head) == 1 and head[0].endswith(b"\r\n\r\n")


def test_the_date_header_is_gunicorns_formatted_once_a_second():
    from email.utils import formatdate

    from common.server import http_date

    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    before = formatdate(usegmt=True)
    assert http_date() in (before, formatdate(usegmt=True))  # unless a second began
