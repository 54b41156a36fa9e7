"""Pooled, signed HTTP client for calls between nodes.

Plain-HTTP calls go over kept-alive http.client connections (common.connections:
about 100 us of client CPU a call, urllib3 about 235 us, requests 500 us,
httpx 480-600 us); calls over TLS over one urllib3 pool manager per node process.
Retries are not done here: the caller retries on *another replica* (see
common.cluster), which is what failover needs.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from common.auth import signed_headers
from common.config import Node, Tuning
from common.connections import ABORT_ON_CLOSE, CallFailed, ConnectionPool
from common.observe.requestlog import REQUEST_ID_HEADER, current_request_id, note_backend
from common.webkit import wire

# The front-end a write came through: the catalog need not push that front-end an
# invalidation, since it drops the book itself on its own write path.
ORIGIN_HEADER = "X-Bazar-Origin"
SENDER_HEADER = "X-Bazar-Node"  # the calling node, named for people (clock offsets), unsigned
JSON_HEADERS = {"Content-Type": "application/json"}
CHUNK = 1 << 20  # bytes read at a time from a streamed answer
URL_SAFE = "/?&=%:@!$'()*+,;~#[]"  # left as they are in a path sent (RFC 3986 reserved, %)


class Unreachable(Exception):
    """The node refused the connection, timed out, or sent garbage."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class Reply:
    """A peer's answer: what callers read of it (the shape of a requests.Response)."""

    __slots__ = ("content", "headers", "node", "reason", "status_code")

    def __init__(
        self, status_code: int, headers, content: bytes, reason: str | None = None, node=""
    ):
        self.node = node  # who answered
        self.status_code = status_code
        self.headers = headers  # case-insensitive
        self.content = content
        self.reason = reason

    def json(self) -> Any:
        return wire.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class InternalClient:
    """Signed JSON calls to other nodes over pooled keep-alive connections."""

    def __init__(
        self,
        secret: str,
        tuning: Tuning,
        pool_size: int = 32,
        sender: str = "",
        tls: ssl.SSLContext | None = None,
        public: tuple[ssl.SSLContext, set[str]] | None = None,
    ):
        """`tls`: the context for https nodes (common.tls.contexts); `public`: another
        for the named nodes (front-ends that show the operator's certificate)."""
        self.secret = secret
        self.sender = {SENDER_HEADER: sender} if sender else {}  # who calls, for clock views
        # block=False: beyond pool_size a call opens a connection of its own, not waits.
        self.pools = _pools(pool_size, tls)
        self.public_pools, self.public_names = (
            (_pools(pool_size, public[0]), public[1]) if public else (self.pools, set())
        )
        self.timeout = _timeout((tuning.connect_timeout, tuning.read_timeout))  # built once
        self.plain = ConnectionPool(pool_size)  # http:// nodes
        self.plain_timeout = (tuning.connect_timeout, tuning.read_timeout)

    def request(
        self,
        node: Node,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        timeout: float | tuple | None = None,
        traced: bool = True,
    ) -> Reply:
        """Send one request; raise Unreachable when no HTTP answer came back.

        Made while serving a request, the call carries that request's id and is
        noted in its log line, unless `traced` is False (work shared by many
        requests, like a replication round, belongs to none of them)."""
        if params:
            path = f"{path}?{urlencode(params)}"
        body = b"" if json is None else wire.dumps(json)
        sent = {**(JSON_HEADERS if json is not None else {}), **self.sender, **(headers or {})}
        sent.update(signed_headers(self.secret, method, path, body))
        request_id = current_request_id() if traced else None
        if request_id:
            sent[REQUEST_ID_HEADER] = request_id
        try:
            answer = self._send(node, method, path, body, sent, timeout)
        except (HTTPError, OSError, CallFailed) as e:
            timed_out = isinstance(e, Urllib3Timeout) or getattr(e, "timed_out", False)
            if traced:
                note_backend(node.name, "timeout" if timed_out else "unreachable")
            raise Unreachable(f"{node.name}: {type(e).__name__}", timed_out) from e
        if traced:
            note_backend(node.name, str(answer.status))
        return Reply(answer.status, answer.headers, answer.data, answer.reason, node.name)

    def download(
        self, node: Node, path: str, into: BinaryIO, timeout: float | tuple | None = None
    ) -> Reply:
        """GET `path` and write a 200's body into `into` as it arrives, never wholly in
        memory (a snapshot); another status's body is in the Reply as usual."""
        sent = {**self.sender, **signed_headers(self.secret, "GET", path, b"")}
        try:
            answer = self.pools.request(
                "GET",
                node.url + path,
                headers=sent,
                timeout=self.timeout if timeout is None else _timeout(timeout),
                redirect=False,
                preload_content=False,
            )
            try:
                if answer.status != 200:
                    return Reply(answer.status, answer.headers, answer.read(), answer.reason)
                for chunk in answer.stream(CHUNK):
                    into.write(chunk)
            finally:
                answer.release_conn()
        except (HTTPError, OSError) as e:
            timed_out = isinstance(e, Urllib3Timeout)
            raise Unreachable(f"{node.name}: {type(e).__name__}", timed_out) from e
        return Reply(answer.status, answer.headers, b"", answer.reason, node.name)

    def _send(self, node: Node, method: str, path: str, body: bytes, headers: dict, timeout):
        """The answer (status, reason, headers, data) over the node's kind of connection."""
        plain = _plain_address(node.url)
        if plain is not None:
            host, port, base = plain
            limits = self.plain_timeout if timeout is None else _pair(timeout)
            # Signed as given; sent with what a URL may not hold percent-encoded (a
            # topic's space), as urllib3 does (the server reads the path decoded).
            target = quote(base + path, safe=URL_SAFE)
            return self.plain.request(method, host, port, target, body or None, headers, limits)
        pools = self.public_pools if node.name in self.public_names else self.pools
        return pools.request(
            method,
            node.url + path,
            body=body or None,
            headers=headers,
            timeout=self.timeout if timeout is None else _timeout(timeout),
            redirect=False,
        )


@cache
def _plain_address(url: str) -> tuple[str, int, str] | None:
    """(host, port, path prefix) of an http:// node url; None for https."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return None
    return parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/")


def _pair(value: float | tuple) -> tuple[float, float]:
    """(connect, read) seconds."""
    return (value[0], value[1]) if isinstance(value, tuple) else (value, value)


def _pools(pool_size: int, context: ssl.SSLContext | None) -> urllib3.PoolManager:
    extra = {"ssl_context": context} if context else {}
    options = [*HTTPConnection.default_socket_options, ABORT_ON_CLOSE]  # see ABORT_ON_CLOSE
    return urllib3.PoolManager(
        num_pools=16, maxsize=pool_size, retries=False, socket_options=options, **extra
    )


def _timeout(value: float | tuple) -> urllib3.Timeout:
    if isinstance(value, tuple):
        return urllib3.Timeout(connect=value[0], read=value[1])
    return urllib3.Timeout(connect=value, read=value)
