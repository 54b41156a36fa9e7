"""common.connections: kept-alive connections are reused, one the peer closed is not,
a refused or silent peer is a CallFailed (timed out or not), and a call given up on
resets its connection (both kinds of pool, common.http)."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest
import urllib3

from common.connections import CallFailed, ConnectionPool
from common.http import _pools


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[int] = []  # the client port of every request: which connection it came on

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.peers.append(self.client_address[1])
        if self.path == "/slow":
            time.sleep(1.0)
        answer = b'{"echo": ' + body + b"}"
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Bazar-Test", "yes")
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.peers = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.handle_error = lambda request, address: None  # a caller that gave up resets
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _post(pool, server, path="/", timeout=(1.0, 2.0)):
    port = server.server_address[1]
    return pool.request("POST", "127.0.0.1", port, path, b"1", {}, timeout)


def test_answers_come_back_whole_and_connections_are_reused(server):
    pool = ConnectionPool()
    first, second = _post(pool, server), _post(pool, server)
    assert (first.status, first.data) == (201, b'{"echo": 1}')
    assert first.headers["x-bazar-test"] == "yes" and first.reason == "Created"
    assert second.data == first.data
    assert _Handler.peers[0] == _Handler.peers[1]  # the same connection


def test_a_connection_the_peer_closed_is_not_reused(server):
    pool = ConnectionPool()
    assert _post(pool, server, "/close").status == 201  # Connection: close
    assert _post(pool, server).status == 201
    assert _Handler.peers[0] != _Handler.peers[1]
    kept = pool._idle[("127.0.0.1", server.server_address[1])][0]
    kept.sock.shutdown(socket.SHUT_RDWR)  # as if the peer had gone away meanwhile
    assert _post(pool, server).status == 201
    assert len(set(_Handler.peers)) == 3


def test_a_refused_connection_fails_without_timing_out():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nobody listens
    with pytest.raises(CallFailed) as failed:
        ConnectionPool().request("GET", "127.0.0.1", port, "/", None, {}, (1.0, 1.0))
    assert not failed.value.timed_out


def test_a_silent_peer_times_out_at_the_read_timeout(server):
    pool = ConnectionPool()
    started = time.monotonic()
    with pytest.raises(CallFailed) as failed:
        _post(pool, server, "/slow", timeout=(1.0, 0.2))
    assert failed.value.timed_out and time.monotonic() - started < 0.9
    assert not pool._idle.get(("127.0.0.1", server.server_address[1]))  # not kept


def _given_up_on_plain(port: int) -> None:
    with pytest.raises(CallFailed):
        ConnectionPool().request("POST", "127.0.0.1", port, "/", b"1", {}, (1.0, 0.2))


def _given_up_on_urllib3(port: int) -> None:  # the pools of https nodes
    timeout = urllib3.Timeout(connect=1.0, read=0.2)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        _pools(1, None).request("POST", f"http://127.0.0.1:{port}/", body=b"1", timeout=timeout)


@pytest.mark.parametrize("give_up", [_given_up_on_plain, _given_up_on_urllib3])
def test_a_call_given_up_on_resets_its_connection(give_up):
    """A reset, not a FIN after what is still unsent: the kernel then drops a request it
    could not deliver to a peer cut off, instead of delivering it after the heal
    (common.connections.ABORT_ON_CLOSE)."""
    ended = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def silent_peer():
            conn, _ = listener.accept()
            with conn:
                time.sleep(0.6)  # the caller gives up meanwhile
                try:
                    while conn.recv(4096):
                        pass
                    ended.append("closed")
                except ConnectionResetError:
                    ended.append("reset")

        peer = threading.Thread(target=silent_peer)
        peer.start()
        give_up(listener.getsockname()[1])
        peer.join(5)
    assert ended == ["reset"]
