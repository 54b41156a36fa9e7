"""`bazar trace ID`: one request's lines from every node's request log, in time order.

Every node writes one JSON line per request it served to
`<data_dir>/logs/<node>.requests.jsonl`, rotated by size to `.1`, `.2`
(common.observe.requestlog). A request id travels with every internal call, so
the lines of one id show the path of one request through the cluster.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.config import Cluster
from common.observe.requestlog import log_path


@dataclass(frozen=True)
class Line:
    """One node's record of a request: the parsed fields and the line as written."""

    fields: dict
    raw: str

    @property
    def sort_key(self) -> tuple[str, str]:
        # ISO times of one fixed format sort as text; the node breaks ties.
        return str(self.fields.get("time", "")), str(self.fields.get("node", ""))


def log_files(cluster: Cluster) -> list[Path]:
    """Every node's request log, current and rotated, that exists."""
    files = []
    for name in cluster.nodes:
        current = log_path(cluster.data_dir, name)
        files += [current] if current.exists() else []
        rotated = [
            path
            for path in current.parent.glob(f"{glob.escape(current.name)}.*")
            if path.suffix[1:].isdigit()  # .1, .2: not a stranger's file
        ]
        files += sorted(rotated, key=lambda path: int(path.suffix[1:]))
    return files


def find(cluster: Cluster, request_id: str) -> list[Line]:
    """The lines of `request_id` from every node, oldest first."""
    lines = [line for path in log_files(cluster) for line in _matching(path, request_id)]
    return sorted(lines, key=lambda line: line.sort_key)


def _matching(path: Path, request_id: str) -> Iterator[Line]:
    needle = request_id.encode()
    try:
        with path.open("rb") as f:
            for raw in f:
                if needle not in raw:  # cheap test first: most lines are other requests
                    continue
                line = _parse(raw)
                if line and line.fields.get("request_id") == request_id:
                    yield line
    except FileNotFoundError:  # rotated away while we looked
        return


def _parse(raw: bytes) -> Line | None:
    """A line as JSON; None for a torn line (a node killed mid-write)."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    return Line(fields, text) if isinstance(fields, dict) else None


def describe(line: Line) -> str:
    """'2026-01-02T03:04:05.123456Z  order-1   POST /buy/{book_id} /buy/1  201  12.3 ms  -> ...'"""
    f = line.fields
    route, path = f.get("route") or "", f.get("path") or ""
    where = path if route in ("", path) else f"{route} {path}"
    duration = f.get("duration_ms")
    took = f"{duration:.1f} ms" if isinstance(duration, int | float) else "? ms"
    text = (
        f"{f.get('time', '?')}  {f.get('node', '?'):<12} {f.get('method', '?')} {where}  "
        f"{f.get('status', '?')}  {took}"
    )
    backends = f.get("backends") or []
    return f"{text}  -> {', '.join(map(str, backends))}" if backends else text
