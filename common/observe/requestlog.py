"""One request followed across hops: request ids and one JSON line per request.

The front-end gives each request an id (or keeps a sane one the client sent);
every internal call made while serving it carries the id in `X-Request-Id`
(see `common.http`), and every node writes one JSON line per request to
`<data_dir>/logs/<node>.requests.jsonl`. `bazar trace ID` merges those files.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from logging.handlers import RotatingFileHandler
from pathlib import Path

from flask import g, has_request_context

REQUEST_ID_HEADER = "X-Request-Id"
# What a client may choose: short, printable, no spaces or quotes (it goes into logs).
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
# Rotated at this size, keeping this many old files: bounded however long a node runs.
LOG_BYTES = 32 * 1024 * 1024
LOG_BACKUPS = 2


def log_path(data_dir: Path, node: str) -> Path:
    return data_dir / "logs" / f"{node}.requests.jsonl"


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(sent: str | None) -> str:
    """The id a client sent if it is sane, else a new one."""
    if sent and SANE_ID.fullmatch(sent):
        return sent
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request this thread serves, if any (background work has none)."""
    return g.get("request_id") if has_request_context() else None


def note_backend(node: str, outcome: str) -> None:
    """Record a call this request made to another node: 'catalog-1 200', 'order-2 down'."""
    if has_request_context() and "backends" in g:
        g.backends.append(f"{node} {outcome}")


def iso_time(epoch: float) -> str:
    """UTC, microseconds: lines of different nodes sort by it."""
    whole, micros = divmod(round(epoch * 1_000_000), 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{micros:06d}Z"


class RequestLog:
    """Writes a node's request lines; rotated by size (logging's RotatingFileHandler)."""

    def __init__(self, path: Path, node: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.node = node
        # One logger per file (a test process builds many apps, each with its own).
        self._logger = logging.getLogger(f"bazar.requests.{path}")
        self._logger.propagate = False  # not into the node's text log
        self._logger.setLevel(logging.INFO)
        if not self._logger.handlers:
            handler = RotatingFileHandler(
                path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, started: float, fields: dict) -> None:
        line = {"time": iso_time(started), "node": self.node, **fields}
        self._logger.info(json.dumps(line, separators=(",", ":")))
