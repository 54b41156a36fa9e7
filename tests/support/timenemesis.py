"""Clock and pause faults as nemesis kinds (issue 20): `MixedNemesis(..., extra=TIME_FAULTS)`.

- pause: SIGSTOP one node, then SIGCONT it. The lease holder every other time
  (for longer than a lease, or just over one), otherwise an order server or a
  front-end: a frozen process or VM, which keeps its sockets and wakes up
  believing no time has passed.
- clock: set one node's wall clock seconds to minutes ahead or behind for the
  fault's length, then back. Past the 30 s signature window its signed calls
  are refused both ways: a node minutes off is cut off until it is set right.
- jump: step one node's wall clock forward and back several times while it
  runs (an NTP step, a VM restored from a snapshot); its monotonic clock runs on.

Clock faults need every node started on a clock of its own
(`LocalCluster(..., clocks=all_at_zero(names))`, `tests/support/timefaults.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.ops import procs
from tests.support import timefaults

if TYPE_CHECKING:
    from tests.support.nemesis import MixedNemesis

LEASE = 2.5  # the default lease_duration: pauses are measured against it
OFFSETS = (-180.0, -45.0, -8.0, -2.5, 2.5, 8.0, 45.0, 180.0)  # seconds, behind and ahead


def holder(nemesis: MixedNemesis) -> str | None:
    """The catalog that says it is the writer now, if one answers."""
    for name in nemesis.cluster.names("catalog"):
        state, body = procs.health(nemesis.cluster.node(name), timeout=1.0)
        if body.get("role") == "primary":
            return name
    return None


def pause(nemesis: MixedNemesis) -> str:
    nemesis.pauses = getattr(nemesis, "pauses", 0) + 1
    cluster, rnd = nemesis.cluster, nemesis.random
    victim = holder(nemesis) if nemesis.pauses % 2 else None
    if victim is None:
        victim = rnd.choice(cluster.names("order") + cluster.names("frontend"))
        seconds = rnd.uniform(0.7, 1.0) * nemesis.downtime
    else:  # longer than a lease, or just over one
        seconds = rnd.choice((LEASE * 1.6, LEASE + 0.2))
    timefaults.pause_for(cluster, victim, seconds, nemesis.stopping)
    return f"pause {victim} {seconds:.1f}s"


def clock(nemesis: MixedNemesis) -> str:
    cluster, rnd = nemesis.cluster, nemesis.random
    victim = rnd.choice(sorted(cluster.clocks))
    offset = rnd.choice(OFFSETS)
    cluster.clocks[victim].set(offset)
    try:
        nemesis.stopping.wait(rnd.uniform(0.7, 1.0) * nemesis.downtime)
    finally:
        cluster.clocks[victim].set(0.0)
    return f"clock {victim} {offset:+.0f}s"


def jump(nemesis: MixedNemesis) -> str:
    cluster, rnd = nemesis.cluster, nemesis.random
    victim = rnd.choice(sorted(cluster.clocks))
    steps = [rnd.choice((-1, 1)) * rnd.uniform(1.0, 20.0) for _ in range(4)]
    try:
        for step in steps:
            cluster.clocks[victim].set(step)
            nemesis.stopping.wait(nemesis.downtime / len(steps))
    finally:
        cluster.clocks[victim].set(0.0)
    return f"jump {victim} " + " ".join(f"{s:+.0f}s" for s in steps)


TIME_FAULTS = {"pause": pause, "clock": clock, "jump": jump}


def all_at_zero(names: list[str]) -> dict[str, float]:
    """Every node on a wall clock of its own, at first right: clock faults may move any."""
    return dict.fromkeys(names, 0.0)
