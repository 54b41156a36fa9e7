"""A nemesis that mixes network partitions with SIGKILLs (a `--netns` cluster for cuts).

Faults come in shuffled rounds of the chosen kinds; each lasts `downtime`
seconds, then is undone (`bazar heal`, or the victim restarted), and the
next comes `interval` seconds after the previous one began:

- kill: SIGKILL one catalog, order or recovery node, then start it again;
- isolate: cut one node (any service) from every other node;
- halves: split all nodes into two random groups;
- bridge: cut two voters from each other only, so each still sees a
  majority through the third: the split that fools a failure detector.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from tests.support.cluster import LocalCluster

PARTITIONS = ("isolate", "halves", "bridge")


class MixedNemesis:
    def __init__(
        self,
        cluster: LocalCluster,
        kinds: tuple[str, ...],
        interval: float,
        downtime: float,
        seed: int = 0,
    ):
        self.cluster = cluster
        self.kinds = kinds
        self.interval = interval
        self.downtime = downtime
        self.nodes = list(cluster.cluster.nodes)
        self.victims = cluster.names("catalog") + cluster.names("order") + cluster.names("recovery")
        self.voters = [n.name for n in cluster.cluster.voters]
        self.kills: Counter = Counter()
        self.partitions: Counter = Counter()
        self.events: list[tuple[float, float, str]] = []  # (began, ended, what)
        self.errors: list[str] = []  # a fault it could not undo (a victim that never came back)
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=180)

    @property
    def count(self) -> int:
        return sum(self.kills.values()) + sum(self.partitions.values())

    def _rounds(self, items: list):
        """Shuffled rounds: every item comes up about equally often."""
        while True:
            order = list(items)
            self._random.shuffle(order)
            yield from order

    def _run(self) -> None:
        kinds = self._rounds(list(self.kinds))
        self._next_victim = self._rounds(self.victims).__next__
        self._next_isolated = self._rounds(self.nodes).__next__
        next_fault = time.monotonic() + self.interval / 2
        while not self._stop.wait(max(0.0, next_fault - time.monotonic())):
            next_fault = time.monotonic() + self.interval
            kind = next(kinds)
            began = time.monotonic()
            try:
                what = self._kill() if kind == "kill" else self._cut(kind)
            except AssertionError as e:  # stop faulting; the checker reports it
                self.errors.append(f"nemesis stopped: {kind}: {str(e).splitlines()[0]}")
                return
            self.events.append((began, time.monotonic(), what))

    def _kill(self) -> str:
        victim = self._next_victim()
        self.cluster.kill(victim)
        self.kills[victim] += 1
        self._stop.wait(self._random.uniform(0.5, 1.0) * self.downtime)
        self.cluster.start(victim, wait=False)
        self.cluster.wait_state(victim, "up", timeout=60)
        return f"kill {victim}"

    def _cut(self, kind: str) -> str:
        args = self._groups(kind)
        self.cluster.bazar("partition", *args)
        self.partitions[kind] += 1
        self._stop.wait(self._random.uniform(0.7, 1.0) * self.downtime)
        self.cluster.bazar("heal")
        return f"{kind} {' | '.join(args)}"

    def _groups(self, kind: str) -> list[str]:
        if kind == "isolate":
            return ["--isolate", self._next_isolated()]
        if kind == "bridge":
            return self._random.sample(self.voters, 2)
        shuffled = list(self.nodes)
        self._random.shuffle(shuffled)
        half = len(shuffled) // 2
        return [",".join(shuffled[:half]), ",".join(shuffled[half:])]
