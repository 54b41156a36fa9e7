"""Kept-alive plain-HTTP connections to other nodes, on the standard library's http.client.

urllib3 costs about 235 us of client CPU per call here; the same call on a kept
http.client connection about 100 us (the bench's gevent ceiling, GET, 3,000 calls
each). Between nodes that is most of an uncached lookup's extra cost and a share
of every buy's hops. This does only what those calls need: a few idle connections
per peer, a connect timeout and a read timeout, no retries (the caller retries on
another replica: common.cluster), no redirects, the whole body read. TLS calls stay
on urllib3 (common.http).
"""

from __future__ import annotations

import http.client
import select
import socket
import struct
import threading
from dataclasses import dataclass

from urllib3 import HTTPHeaderDict

# Every connection to another node closes with a reset (SO_LINGER 0), not a FIN after
# whatever is still unsent. A call given up on (timed out while the peer was cut off)
# leaves its request in the kernel's send queue, which TCP goes on retransmitting for
# minutes: once the link healed it reached the peer and was carried out seconds after
# the caller had been answered 503, over writes acknowledged since (the partition suite:
# a price write answered 503 landed 6.6 s later, after the heal, undoing newer prices).
# A reset drops the queue with the socket. Closes after a whole answer lose nothing.
ABORT_ON_CLOSE = (socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class CallFailed(Exception):
    """No HTTP answer: refused, reset, timed out, or not HTTP."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class Answer:
    status: int
    reason: str
    headers: HTTPHeaderDict  # case-insensitive, as urllib3's
    data: bytes


class ConnectionPool:
    """Idle connections per (host, port), reused last-in first-out; at most `keep` idle
    per peer (beyond that a call opens one of its own and closes it after)."""

    def __init__(self, keep: int = 32):
        self.keep = keep
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        body: bytes | None,
        headers: dict,
        timeout: tuple[float, float],
    ) -> Answer:
        """One request and its whole answer; raises CallFailed when none came back."""
        conn = self._take(host, port)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=timeout[0])
                conn.connect()
                conn.sock.setsockopt(*ABORT_ON_CLOSE)
            conn.sock.settimeout(timeout[1])
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as e:
            if conn is not None:
                conn.close()
            timed_out = isinstance(e, TimeoutError | socket.timeout)
            raise CallFailed(f"{type(e).__name__}: {e}", timed_out) from e
        answer = Answer(
            response.status, response.reason, HTTPHeaderDict(response.getheaders()), data
        )
        self._give_back(host, port, conn)
        return answer

    def _take(self, host: str, port: int) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get((host, port))
            while idle:
                conn = idle.pop()
                if _usable(conn):
                    return conn
                conn.close()
        return None

    def _give_back(self, host: str, port: int, conn: http.client.HTTPConnection) -> None:
        if conn.sock is None:  # the peer said Connection: close
            return
        with self._lock:
            idle = self._idle.setdefault((host, port), [])
            if len(idle) < self.keep:
                idle.append(conn)
                return
        conn.close()


def _usable(conn: http.client.HTTPConnection) -> bool:
    """An idle connection the peer has not closed: nothing to read on it yet (a closed
    one reads as end of file). As urllib3 checks before reusing one."""
    if conn.sock is None:
        return False
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
