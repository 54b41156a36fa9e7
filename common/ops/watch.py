"""The foreground display of `bazar up`: each node's state as it changes.

Every half second the display asks each node's /health and looks at its
process (pid file), and prints one timestamped line per change: started,
healthy, down, back, recovering, stale, a new role. It ends by itself once
every node's process is gone (`bazar down` from another terminal); one node
killed is shown as down and the display goes on.

`Detector` turns observations into changes and knows nothing of processes or
HTTP, so it is tested alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from common.config import Cluster, Node
from common.ops import procs

PERIOD = 0.5  # seconds between two looks at the cluster
HEALTH_TIMEOUT = 0.4  # a node that takes longer "does not answer"
NO_ANSWER = "no answer"  # the process runs, /health does not answer
DOWN = "down"  # no process, no answer
SILENT = (NO_ANSWER, DOWN)


@dataclass(frozen=True)
class Seen:
    """One look at one node: 'up', 'recovering', 'joining', 'stale', 'behind', NO_ANSWER or DOWN."""

    state: str
    role: str | None = None


def seen(running: bool, health_state: str, body: dict) -> Seen:
    """What procs.health answered, with whether the node's process runs."""
    if health_state == "down":  # procs.health: no answer, or no status in the answer
        return Seen(NO_ANSWER if running else DOWN)
    return Seen(health_state, body.get("role"))


@dataclass(frozen=True)
class Change:
    node: str
    text: str


class Detector:
    """Successive looks at the nodes -> the changes an operator reads."""

    def __init__(self, patience: int = 2) -> None:
        self.last: dict[str, Seen] = {}
        self.lost: set[str] = set()  # was answering, then went silent: its return is "back"
        # A node that stops answering while its process lives is "not answering" only
        # after `patience` looks in a row: a killed node's process is gone a moment later.
        self.patience = patience
        self.silent: dict[str, int] = {}

    def update(self, looks: dict[str, Seen]) -> list[Change]:
        changes = []
        for node, now in looks.items():
            before = self.last.get(node)
            if self._wait_and_see(node, before, now):
                continue
            text = describe(before, now, back=node in self.lost)
            if now.state == "up":
                self.lost.discard(node)
            elif now.state in SILENT and before and before.state not in SILENT:
                self.lost.add(node)
            self.last[node] = now
            if text:
                changes.append(Change(node, text))
        return changes

    def _wait_and_see(self, node: str, before: Seen | None, now: Seen) -> bool:
        if now.state != NO_ANSWER or before is None or before.state in SILENT:
            self.silent.pop(node, None)
            return False
        self.silent[node] = self.silent.get(node, 0) + 1
        return self.silent[node] < self.patience


def describe(before: Seen | None, now: Seen, back: bool = False) -> str | None:
    """The words for one node's change, or None if nothing an operator cares about changed."""
    if before == now:
        return None
    if before is not None and before.state == now.state:
        return f"now {now.role}" if now.role else None
    role = f" ({now.role})" if now.role else ""
    if now.state == "up":
        return ("back" if back else "healthy") + role
    if now.state == NO_ANSWER:
        return "started" if before is None or before.state == DOWN else "not answering"
    if now.state == DOWN:
        return DOWN
    return now.state + role  # recovering, joining, stale, behind: /health answers 503


def clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


class Display:
    """Prints the changes; `note` takes single answers (the start), `run` polls until
    every node has stopped."""

    def __init__(
        self,
        cluster: Cluster,
        out: Callable[[str], None] = lambda line: print(line, flush=True),
        now: Callable[[], str] = clock,
    ) -> None:
        self.cluster = cluster
        self.detector = Detector()
        self.out = out
        self.now = now

    def note(self, node: Node, health_state: str, body: dict) -> None:
        """One /health answer from a node that was just started (`procs.wait_healthy`).
        Its first reads "started" even when it is healthy already (a quick node)."""
        now = seen(True, health_state, body)
        if node.name not in self.detector.last and now.state != NO_ANSWER:
            self._show(self.detector.update({node.name: Seen(NO_ANSWER)}))
        self._show(self.detector.update({node.name: now}))

    def run(self, period: float = PERIOD, stop: threading.Event | None = None) -> bool:
        """Show changes until no node's process is left (False) or `stop` is set (True)."""
        stop = stop or threading.Event()
        nodes = list(self.cluster.nodes.values())
        with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
            while not stop.is_set():
                started = time.monotonic()
                running = {n.name: procs.is_running(self.cluster, n) for n in nodes}
                answers = dict(zip(nodes, pool.map(_health, nodes), strict=True))
                looks = {n.name: seen(running[n.name], *answers[n]) for n in nodes}
                self._show(self.detector.update(looks))
                if not any(running.values()):
                    self.out(f"{self.now()}  every node has stopped; the display ends")
                    return False
                stop.wait(max(0.0, period - (time.monotonic() - started)))
        return True

    def _show(self, changes: list[Change]) -> None:
        for change in changes:
            self.out(f"{self.now()}  {change.node:<12} {change.text}")


def _health(node: Node) -> tuple[str, dict]:
    return procs.health(node, HEALTH_TIMEOUT)
