"""One request followed across hops: request ids and one JSON line per request.

The front-end gives each request an id (or keeps a sane one the client sent);
every internal call made while serving it carries the id in `X-Request-Id`
(see `common.http`), and every node writes one JSON line per request to
`<data_dir>/logs/<node>.requests.jsonl`. `bazar trace ID` merges those files.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import os
import re
import secrets
import time
from pathlib import Path

from flask import has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
# What a client may choose: short, printable, no spaces or quotes (it goes into logs).
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
# Rotated at this size, keeping this many old files: bounded however long a node runs.
LOG_BYTES = 32 * 1024 * 1024
LOG_BACKUPS = 2


def log_path(data_dir: Path, node: str) -> Path:
    return data_dir / "logs" / f"{node}.requests.jsonl"


# A random prefix per process and a counter: unique across nodes and restarts, and
# no system call per request (uuid4 reads os.urandom: 6% of a cached lookup's time).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)  # next() on it is atomic under the GIL


def _new_id_prefix() -> None:
    """A forked process (a gunicorn worker) must not repeat its parent's ids."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX, _ID_COUNTER = secrets.token_hex(8), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """32 hex digits: 16 random per process, then a 16-digit sequence number."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def accept_request_id(sent: str | None) -> str:
    """The id a client sent if it is sane, else a new one."""
    if sent and SANE_ID.fullmatch(sent):
        return sent
    return new_request_id()


TRACE_ENVIRON = "bazar.trace"  # where a request's Trace lives in its WSGI environ
ROUTE_ENVIRON = "bazar.route"  # the rule of a request answered before Flask routed it
REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")  # WSGI's name


class Trace:
    """What a request's log line needs, gathered while it is served."""

    __slots__ = ("request_id", "started", "clock", "backends")

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.started = time.time()
        self.clock = time.perf_counter()
        self.backends: list[str] = []  # calls made to other nodes: 'catalog-1 200'


# The trace of the request this greenlet (or thread) serves: set by the request hooks
# around the whole app, so a request answered before Flask (frontend/buys.py) is traced
# too. A greenlet or thread started meanwhile begins with none: background work.
_SERVING: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("bazar_trace", default=None)


def serving(trace: Trace | None) -> contextvars.Token:
    """Mark `trace` as the current request's; `done_serving(token)` at its end."""
    return _SERVING.set(trace)


def done_serving(token: contextvars.Token) -> None:
    _SERVING.reset(token)


def current_trace() -> Trace | None:
    """The trace of the request this thread serves, if any (background work has none)."""
    trace = _SERVING.get()
    if trace is None and has_request_context():  # an app without the request hooks
        trace = request.environ.get(TRACE_ENVIRON)
    return trace


def current_request_id() -> str | None:
    trace = current_trace()
    return trace.request_id if trace else None


def note_backend(node: str, outcome: str) -> None:
    """Record a call this request made to another node: 'catalog-1 200', 'order-2 timeout'."""
    trace = current_trace()
    if trace is not None:
        trace.backends.append(f"{node} {outcome}")


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def iso_time(epoch: float) -> str:
    """UTC, microseconds: lines of different nodes sort by it."""
    global _second
    whole, micros = divmod(round(epoch * 1_000_000), 1_000_000)
    if _second[0] != whole:  # strftime once per second, not once per line
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{micros:06d}Z"


# A path of these characters needs no JSON escaping (most do): no json.dumps call.
_PLAIN = re.compile(r"[A-Za-z0-9/._~%!$&'()*+,;=:@-]*")


def _json_text(text: str) -> str:
    return f'"{text}"' if _PLAIN.fullmatch(text) else json.dumps(text)


class RequestLog:
    """A node's request lines, appended to its file and rotated by size.

    Written in batches by `common.observe.recorder.Recorder`'s thread, never by
    the thread serving the request.
    """

    def __init__(self, path: Path, node: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.node = node
        self._node_json = json.dumps(node)  # config keys may hold any character
        self._file = path.open("a", encoding="utf-8")

    def line(
        self,
        started: float,
        request_id: str,
        backends: list[str] | None,
        method: str,
        route: str,
        path: str,
        status: int,
        elapsed: float,
    ) -> str:
        """time, node, request_id, method, route, path, status, duration_ms, backends.
        Only the path and the node name can hold characters JSON must escape (the id
        is sane, a method is an HTTP token, routes are ours)."""
        return (
            f'{{"time":"{iso_time(started)}","node":{self._node_json},'
            f'"request_id":"{request_id}","method":"{method}","route":"{route}",'
            f'"path":{_json_text(path)},"status":{status},'
            f'"duration_ms":{elapsed * 1000:.3f},'
            f'"backends":{json.dumps(backends) if backends else "[]"}}}'
        )

    def append(self, lines: list[str]) -> None:
        """Call from one thread at a time."""
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        if self._file.tell() >= LOG_BYTES:
            self._rotate()

    def _rotate(self) -> None:
        """requests.jsonl -> .1 -> .2 ... (LOG_BACKUPS kept), and a new empty file."""
        self._file.close()
        for n in range(LOG_BACKUPS, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n - 1}") if n > 1 else self.path
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n}"))
        self._file = self.path.open("a", encoding="utf-8")
