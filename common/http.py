"""Pooled, signed HTTP client for calls between nodes.

One `requests.Session` per node process keeps connections alive to every
peer. Retries are not done here: the caller retries on *another replica*
(see common.cluster), which is what failover needs.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from common.auth import SignedAuth
from common.config import Node, Tuning
from common.observe.requestlog import REQUEST_ID_HEADER, current_request_id, note_backend

# The front-end a write came through: the catalog need not push that front-end an
# invalidation, since it drops the book itself on its own write path.
ORIGIN_HEADER = "X-Bazar-Origin"


class Unreachable(Exception):
    """The node refused the connection, timed out, or sent garbage."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class InternalClient:
    """Signed JSON calls to other nodes over pooled keep-alive connections."""

    def __init__(self, secret: str, tuning: Tuning, pool_size: int = 32):
        self.session = requests.Session()
        self.session.auth = SignedAuth(secret)
        self.session.trust_env = False  # loopback peers: never go through a proxy
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.timeout = (tuning.connect_timeout, tuning.read_timeout)

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
    ) -> requests.Response:
        """Send one request; raise Unreachable when no HTTP answer came back.

        Made while serving a request, the call carries that request's id and is
        noted in its log line."""
        request_id = current_request_id()
        if request_id:
            headers = {**(headers or {}), REQUEST_ID_HEADER: request_id}
        try:
            response = self.session.request(
                method,
                node.url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as e:
            timed_out = isinstance(e, requests.Timeout)
            note_backend(node.name, "timeout" if timed_out else "unreachable")
            raise Unreachable(f"{node.name}: {type(e).__name__}", timed_out) from e
        note_backend(node.name, str(response.status_code))
        return response
