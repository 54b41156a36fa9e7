"""`bazar rolling-restart`: every node restarted one at a time, each back before the next.

The order keeps the cluster whole at every step (docs/upgrading.md):

1. the recovery node, then the catalogs that do not hold the lease, the order servers
   and the front-ends; the catalog lease holder last, once every other node runs the
   new code;
2. a catalog, order or recovery node is stopped gracefully (SIGTERM) and started again:
   callers fail over to its peers meanwhile (the front-end's Router, the order
   servers' catalog calls). A stopping lease holder steps down and frees the lease,
   so another catalog takes over at once (`CatalogStore.hand_off`);
3. a front-end is upgraded in place: its worker first retires its read lease (SIGUSR2
   to the worker), then its master re-executes itself with the listening socket
   (gunicorn's SIGUSR2), and the old master stops once the new worker has loaded. The
   port never closes, so no customer's connection is refused;
4. a node is back when its /health says up (a catalog: under a read lease, so caught
   up; an order server: rejoined) and, for a voter, when its Raft log moves with the
   group's again (the lease's `seq` passed what the others showed once it had
   stopped), so the next voter's stop leaves a quorum.

A node not back within the timeout stops the roll there with exit status 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.config import VOTERS, Cluster, Node
from common.ops import netns, procs


class RollError(Exception):
    """A node did not come back as it should: the roll stops here."""


@dataclass
class Step:
    node: Node
    how: str  # what was done, for the progress line
    pids: tuple[int | None, int | None] = (None, None)
    seconds: float = 0.0
    note: str = ""


def plan(cluster: Cluster, holder: str | None) -> list[Node]:
    """Recovery, catalogs without the lease, order servers, front-ends; the holder last."""
    rank = {"recovery": 0, "catalog": 1, "order": 2, "frontend": 3}
    nodes = [n for n in cluster.nodes.values() if n.name != holder]
    nodes.sort(key=lambda n: rank.get(n.service, 9))  # config order within a service
    return nodes + ([cluster.node(holder)] if holder else [])


def run(
    cluster: Cluster,
    timeout: float = 60.0,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
) -> int:
    began = time.monotonic()
    try:
        holder = _preflight(cluster)
    except RollError as e:
        print(f"bazar: rolling-restart: {e}", file=sys.stderr)
        return 1
    order = plan(cluster, holder)
    say(f"rolling restart of {len(order)} nodes: {', '.join(n.name for n in order)}")
    for node in order:
        say(f"{_clock()}  {node.name:<12} restarting")
        try:
            step = restart(cluster, node, timeout)
        except RollError as e:
            print(
                f"bazar: rolling-restart: {node.name}: {e}; stopped here, the nodes after "
                f"it were not restarted (log: {procs.log_file(cluster, node)})",
                file=sys.stderr,
            )
            return 1
        old, new = step.pids
        say(
            f"{_clock()}  {node.name:<12} back in {step.seconds:.1f} s ({step.how}, pid "
            f"{old} -> {new}){'; ' + step.note if step.note else ''}"
        )
    say(f"rolling restart done: {len(order)} nodes in {time.monotonic() - began:.1f} s")
    return 0


def _preflight(cluster: Cluster) -> str | None:
    """Every node must run and be up (a roll takes one node away at a time: with another
    down already, a service could lose its last replica); returns the lease holder."""
    states = {n: procs.health(n) for n in cluster.nodes.values()}
    not_up = [f"{n.name} ({state})" for n, (state, _) in states.items() if state != "up"]
    if not_up:
        raise RollError(
            f"every node must be up before a rolling restart; not up: {', '.join(not_up)}"
        )
    writers = [n.name for n, (_, body) in states.items() if body.get("role") == "primary"]
    if cluster.of("catalog") and len(writers) != 1:
        raise RollError(f"no single catalog primary now ({writers or 'none'}); try again soon")
    return writers[0] if writers else None


def restart(cluster: Cluster, node: Node, timeout: float) -> Step:
    began = time.monotonic()
    old = procs.running_pid(cluster, node)
    if node.service == "frontend" and _ready_of(cluster, node).get("master") == old:
        step = Step(node, "upgraded in place")
        new = upgrade_in_place(cluster, node, timeout)
    else:
        step = Step(node, "stop + start")
        step.note = _stop(cluster, node)
        # Read once it has stopped: nothing it replays from its own journal can be newer.
        mark = _voters_seq(cluster, node) if node.service in VOTERS else None
        new = procs.start(cluster, node, netns.exec_prefix(cluster, node))
        _wait_up(cluster, node, new, timeout)
        if mark is not None:
            _wait_follows_log(cluster, node, mark, timeout - (time.monotonic() - began))
    step.pids = (old, new)
    step.seconds = time.monotonic() - began
    return step


def _stop(cluster: Cluster, node: Node) -> str:
    """Graceful stop; for the catalog primary, also how long until another one writes."""
    was_primary = procs.health(node)[1].get("role") == "primary"
    if not was_primary:
        procs.stop(cluster, node)
        return ""
    began = time.monotonic()
    stopping = threading.Thread(target=procs.stop, args=(cluster, node), daemon=True)
    stopping.start()
    others = [n for n in cluster.of("catalog") if n.name != node.name]
    successor, waited = None, 0.0
    while successor is None and time.monotonic() - began < 30:
        for other in others:
            if procs.health(other, 0.5)[1].get("role") == "primary":
                successor, waited = other.name, time.monotonic() - began
        time.sleep(0.02)
    stopping.join()
    if successor is None:
        raise RollError("no other catalog took the lease over within 30 s of its stop")
    return f"{successor} took the lease over and writes {waited:.2f} s after the stop began"


# -- a front-end: an upgrade in place on the same listening socket ----------------------


def upgrade_in_place(cluster: Cluster, node: Node, timeout: float) -> int:
    """gunicorn's on-the-fly upgrade; returns the new master's pid."""
    old = procs.running_pid(cluster, node)
    worker = _ready_of(cluster, node).get("worker")
    if old is None or not worker:
        raise RollError("not running (no pid or worker file)")
    deadline = time.monotonic() + timeout
    # 1. The worker retires its read lease: from here on either process may get a
    #    message meant for this front-end, so the old one serves nothing from its cache.
    os.kill(worker, signal.SIGUSR2)
    _until(deadline, lambda: procs.health(node)[1].get("lease", {}).get("retired"), "retire")
    # 2. The master re-executes itself; its child inherits the listening socket.
    os.kill(old, signal.SIGUSR2)
    _until(deadline, lambda: _ready_of(cluster, node).get("master") not in (None, old), "re-exec")
    new = _ready_of(cluster, node)["master"]
    _atomic_write(procs.pid_file(cluster, node), str(new))
    # 3. The new worker has loaded and accepts (the socket queues what comes before):
    #    the old master stops gracefully (in-flight requests finish, Connection: close).
    os.kill(old, signal.SIGTERM)
    if not procs.wait_gone(old, 15.0):
        procs.signal_group(old, signal.SIGKILL)  # the old master's group: not the new one
        procs.wait_gone(old, 5.0)
    if procs.running_pid(cluster, node) != new:
        raise RollError(f"the new master {new} did not stay up")
    _wait_up(cluster, node, new, max(1.0, deadline - time.monotonic()))
    return new


def _ready_of(cluster: Cluster, node: Node) -> dict:
    try:
        return json.loads(procs.ready_file(cluster, node).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _atomic_write(path, text: str) -> None:
    staged = path.with_name(f"{path.name}.new")
    staged.write_text(text)
    staged.replace(path)


# -- waiting ---------------------------------------------------------------------------


def _wait_up(cluster: Cluster, node: Node, pid: int, timeout: float) -> None:
    missing = procs.wait_healthy({node: pid}, max(1.0, timeout))
    if missing:
        state, body = procs.health(node)
        why = body.get("message") or state
        raise RollError(f"not healthy within {timeout:.0f} s (last: {why})")


def _voters_seq(cluster: Cluster, node: Node) -> int:
    """The newest lease `seq` the other voters show: a change the group committed."""
    seqs = [
        procs.health(v)[1].get("lease", {}).get("seq", 0)
        for v in cluster.voters
        if v.name != node.name
    ]
    return max(seqs, default=0)


def _wait_follows_log(cluster: Cluster, node: Node, before: int, timeout: float) -> None:
    """A restarted voter replays its own journal first; only a `seq` newer than what the
    others showed once it had stopped proves it applies the group's new entries again."""
    try:
        _until(
            time.monotonic() + max(1.0, timeout),
            lambda: procs.health(node)[1].get("lease", {}).get("seq", 0) > before,
            "its Raft log to follow the group's",
        )
    except RollError as e:
        raise RollError(f"up, but {e}") from None


def _until(deadline: float, ready: Callable[[], object], what: str) -> None:
    while not ready():
        if time.monotonic() >= deadline:
            raise RollError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _clock() -> str:
    return time.strftime("%H:%M:%S")
