"""A nemesis that mixes network partitions with SIGKILLs (a `--netns` cluster for cuts).

Faults come in shuffled rounds of the chosen kinds; each lasts `downtime`
seconds, then is undone (`bazar heal`, or the victim restarted), and the
next comes `interval` seconds after the previous one began:

- kill: SIGKILL one catalog, order or recovery node, then start it again;
- isolate: cut one node (any service) from every other node;
- halves: split all nodes into two random groups;
- bridge: cut two voters from each other only, so each still sees a
  majority through the third: the split that fools a failure detector.

A kind is one entry of the fault table (`_table`): a callable that makes
the fault, undoes it and returns what it did. More kinds come as more
entries, or as `extra` functions `fault(nemesis) -> str`. Any exception a
fault raises stops the nemesis and is kept in `errors`: a run that checks
`errors` and `made` cannot pass quietly with fewer faults than it asked for.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial

from tests.support.cluster import LocalCluster

PARTITIONS = ("isolate", "halves", "bridge")
JOIN_TIMEOUT = 180.0  # seconds stop() waits for the fault in progress to be undone


class MixedNemesis:
    def __init__(
        self,
        cluster: LocalCluster,
        kinds: tuple[str, ...],
        interval: float,
        downtime: float,
        seed: int = 0,
        extra: Mapping[str, Callable[[MixedNemesis], str]] | None = None,
    ):
        self.cluster = cluster
        self.kinds = kinds
        self.interval = interval
        self.downtime = downtime
        self.nodes = list(cluster.cluster.nodes)
        self.victims = cluster.names("catalog") + cluster.names("order") + cluster.names("recovery")
        self.voters = [n.name for n in cluster.cluster.voters]
        self.made: Counter = Counter()  # faults made and undone, per kind
        self.kills: Counter = Counter()  # per victim
        self.partitions: Counter = Counter()  # per kind of cut
        self.events: list[tuple[float, float, str]] = []  # (began, ended, what)
        self.errors: list[str] = []  # any fault that raised: the run fails on it
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.faults = self._table(extra or {})
        unknown = sorted(set(kinds) - set(self.faults))
        if unknown:
            raise ValueError(f"no such fault kind: {', '.join(unknown)}")
        self._next_victim = self._rounds(self.victims).__next__
        self._next_isolated = self._rounds(self.nodes).__next__
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _table(self, extra: Mapping[str, Callable[[MixedNemesis], str]]) -> dict:
        """kind -> a callable that makes one fault, undoes it, and says what it did."""
        table: dict[str, Callable[[], str]] = {"kill": self._kill}
        table.update({kind: partial(self._cut, kind) for kind in PARTITIONS})
        table.update({kind: partial(fault, self) for kind, fault in extra.items()})
        return table

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join(timeout=JOIN_TIMEOUT)
        if self._thread.is_alive():
            self.errors.append(f"nemesis still busy {JOIN_TIMEOUT:.0f} s after stop")

    @property
    def count(self) -> int:
        return sum(self.made.values())

    def short_of(self, minimum: int) -> dict[str, int]:
        """The kinds made fewer than `minimum` times, with how many were made."""
        return {kind: self.made[kind] for kind in self.kinds if self.made[kind] < minimum}

    def _rounds(self, items: list):
        """Shuffled rounds: every item comes up about equally often."""
        while True:
            order = list(items)
            self.random.shuffle(order)
            yield from order

    def _run(self) -> None:
        kind = "-"
        try:
            kinds = self._rounds(list(self.kinds))
            next_fault = time.monotonic() + self.interval / 2
            while not self.stopping.wait(max(0.0, next_fault - time.monotonic())):
                next_fault = time.monotonic() + self.interval
                kind = next(kinds)
                began = time.monotonic()
                what = self.faults[kind]()
                self.made[kind] += 1
                self.events.append((began, time.monotonic(), what))
        except Exception as e:  # any error, not only a failed assert: stop and fail the run
            first = (str(e).splitlines() or [""])[0]
            self.errors.append(f"nemesis stopped: {kind}: {type(e).__name__}: {first}")

    def _kill(self) -> str:
        victim = self._next_victim()
        self.cluster.kill(victim)
        self.kills[victim] += 1
        self.stopping.wait(self.random.uniform(0.5, 1.0) * self.downtime)
        self.cluster.start(victim, wait=False)
        self.cluster.wait_state(victim, "up", timeout=60)
        return f"kill {victim}"

    def _cut(self, kind: str) -> str:
        args = self._groups(kind)
        self.cluster.bazar("partition", *args)
        self.partitions[kind] += 1
        self.stopping.wait(self.random.uniform(0.7, 1.0) * self.downtime)
        self.cluster.bazar("heal")
        return f"{kind} {' | '.join(args)}"

    def _groups(self, kind: str) -> list[str]:
        if kind == "isolate":
            return ["--isolate", self._next_isolated()]
        if kind == "bridge":
            return self.random.sample(self.voters, 2)
        shuffled = list(self.nodes)
        self.random.shuffle(shuffled)
        half = len(shuffled) // 2
        return [",".join(shuffled[:half]), ",".join(shuffled[half:])]
