"""Clock and pause faults for tests: a node's own wall clock, and SIGSTOP/SIGCONT.

Wall clock. `give_clock` makes a node run under `wallclock.c`, a small LD_PRELOAD
shim built here with gcc: it adds an offset to CLOCK_REALTIME (time.time,
datetime.now, log times, the Date header, SQLite's 'now') and to nothing else,
and reads that offset from an 8-byte file every process of the node maps. So a
`WallClock.set` is a jump, forward or back, seen by the node at once, while its
monotonic clock, its sleeps and its timed waits run on untouched: as when NTP or
an operator steps a host's clock. A fixed offset is the same clock never moved.

Debian's libfaketime (0.9.10), as the issue's reproduction used it, is here too
(`give_faketime`), for fixed offsets only: with FAKETIME=+4s it moves the
monotonic clock by the same amount (FAKETIME_DONT_FAKE_MONOTONIC=1 makes
`time.sleep` fail with EINVAL), so it cannot jump the wall clock alone; and it
does not wrap sem_clockwait, which Python 3.11 uses for a timed lock or Event
wait, so in a real thread `threading.Event().wait(0.3)` never returns. Our gevent
nodes wait on gevent's loop instead and the recovery node has no such wait today,
so nodes run under it; the shim has neither limit.

Pauses. `paused` SIGSTOPs a node's whole process group (the gunicorn master and
its worker, as `procs.kill` signals it) and always SIGCONTs it when the block
ends, also on an exception. `bazar stop`/`down` send SIGCONT after SIGTERM, so a
cluster torn down while a node is paused still stops at once.

All of this works the same on a `--netns` cluster: `ip netns exec` keeps the
environment, and the pid in the node's pid file is the node's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from common.ops import procs

if TYPE_CHECKING:
    from tests.support.cluster import LocalCluster

SHIM_SOURCE = Path(__file__).with_name("wallclock.c")
OFFSET_VARIABLE = "BAZAR_WALL_OFFSET_FILE"
BUILD_DIR = Path(__file__).resolve().parents[2] / "build" / "wallclock"  # git-ignored
FAKETIME_GLOBS = ("/usr/lib/*/faketime", "/usr/lib/faketime", "/usr/local/lib/faketime")
FAKETIME_OFFSET = re.compile(r"[+-]\d+(\.\d+)?[smhdy]?")  # libfaketime's relative form


class ClockToolMissing(RuntimeError):
    """The shim cannot be built here (no gcc); the message says what to install."""


def shim_missing() -> str | None:
    """Why the wall-clock shim cannot be built here (None: it can)."""
    if shutil.which("gcc") is None:
        return "gcc is not installed (Debian package gcc): the wall-clock shim is built with it"
    return None


def build_shim(build_dir: Path = BUILD_DIR) -> Path:
    """The shim's shared library, compiled once per version of its source."""
    source = SHIM_SOURCE.read_bytes()
    target = build_dir / f"wallclock-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    why_not = shim_missing()
    if why_not:
        raise ClockToolMissing(why_not)
    build_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}")
    command = ["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC"]
    result = subprocess.run(  # noqa: S603
        [*command, "-o", str(partial), str(SHIM_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"gcc could not build {SHIM_SOURCE.name}:\n{result.stderr}")
    os.replace(partial, target)  # another session building it at once gets a whole file
    return target


class WallClock:
    """A wall-clock offset that processes started with `env()` follow at once."""

    def __init__(self, path: Path, seconds: float = 0.0):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 8)
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)
        self._cell = memoryview(self._map).cast("q")  # native int64, as the shim reads it
        self.set(seconds)

    def set(self, seconds: float) -> None:
        """Move the clock to `seconds` off the host's (a jump: one aligned 8-byte store)."""
        self._cell[0] = round(seconds * 1e9)

    @property
    def offset(self) -> float:
        return self._cell[0] / 1e9

    def env(self, shim: Path) -> dict[str, str]:
        """The environment that runs a process on this clock."""
        for path in (shim, self.path):
            if any(c in str(path) for c in " :\n"):  # LD_PRELOAD splits on them
                raise ValueError(f"the wall-clock files need a path without ' ' or ':': {path}")
        return {"LD_PRELOAD": str(shim), OFFSET_VARIABLE: str(self.path)}


def clock_file(cluster: LocalCluster, name: str) -> Path:
    return cluster.cluster.data_dir / "clocks" / f"{name}.offset"


def give_clock(cluster: LocalCluster, name: str, seconds: float = 0.0) -> WallClock:
    """Node `name` runs on a wall clock of its own, `seconds` off the host's, from its
    next start on and across restarts (see `procs.node_env`). `set` on the clock
    returned (also kept in `cluster.clocks`) makes it jump while the node runs."""
    clock = WallClock(clock_file(cluster, name), seconds)
    _update_env(cluster, name, {**clock.env(build_shim()), "FAKETIME": None})
    cluster.clocks[name] = clock
    return clock


def take_clock(cluster: LocalCluster, name: str) -> None:
    """Node `name` runs on the host's clock again from its next start on."""
    _update_env(cluster, name, {"LD_PRELOAD": None, OFFSET_VARIABLE: None, "FAKETIME": None})
    cluster.clocks.pop(name, None)


def libfaketime() -> Path | None:
    """Where libfaketime.so.1 is (Debian package libfaketime, pulled in by faketime)."""
    for pattern in FAKETIME_GLOBS:
        for folder in sorted(Path("/").glob(pattern.lstrip("/"))):
            if (folder / "libfaketime.so.1").is_file():
                return folder / "libfaketime.so.1"
    return None


def faketime_missing() -> str | None:
    if libfaketime() is None:
        return "libfaketime.so.1 not found (Debian: apt-get install faketime)"
    return None


def give_faketime(cluster: LocalCluster, name: str, offset: str) -> None:
    """Node `name` runs under libfaketime from its next start on: FAKETIME=`offset`
    ("+4s", "-90s", "+2m"), both its wall and its monotonic clock moved by it, fixed
    (see the module's note); `give_clock` or `take_clock` end it."""
    if not FAKETIME_OFFSET.fullmatch(offset):
        raise ValueError(f"a libfaketime offset looks like +4s or -2m, not {offset!r}")
    library = libfaketime()
    if library is None:
        raise ClockToolMissing(faketime_missing())
    _update_env(
        cluster, name, {"LD_PRELOAD": str(library), "FAKETIME": offset, OFFSET_VARIABLE: None}
    )
    cluster.clocks.pop(name, None)  # no file to jump with


def restart_on_clock(cluster: LocalCluster, name: str, seconds: float) -> WallClock:
    """Kill node `name` and start it again on a clock `seconds` off the host's."""
    clock = give_clock(cluster, name, seconds)
    cluster.kill(name)
    cluster.start(name)
    return clock


def _update_env(cluster: LocalCluster, name: str, changes: dict[str, str | None]) -> None:
    """Set (or, for None, remove) variables in the node's env file, keeping the others."""
    node = cluster.node(name)
    env = procs.node_env(cluster.cluster, node)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    path = procs.env_file(cluster.cluster, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    partial.replace(path)  # a node starting meanwhile reads the old file or the new one


# -- pauses ---------------------------------------------------------------------------
@contextlib.contextmanager
def paused(cluster: LocalCluster, name: str) -> Iterator[int]:
    """SIGSTOP node `name` (its whole process group) for the block; SIGCONT it at the end,
    whatever happens in the block. Yields the group's id."""
    pid = procs.running_pid(cluster.cluster, cluster.node(name))
    if pid is None:
        raise AssertionError(f"cannot pause {name}: it is not running")
    procs.signal_group(pid, signal.SIGSTOP)
    try:
        _wait_stopped(pid)
        yield pid
    finally:
        procs.signal_group(pid, signal.SIGCONT)


def pause_for(
    cluster: LocalCluster, name: str, seconds: float, stop: threading.Event | None = None
) -> None:
    """Freeze node `name` for `seconds` (less if `stop` is set: a nemesis ending)."""
    with paused(cluster, name):
        (stop or threading.Event()).wait(seconds)


def continue_all(cluster: LocalCluster) -> None:
    """SIGCONT every running node of the cluster (harmless to one that runs)."""
    for node in cluster.cluster.nodes.values():
        pid = procs.running_pid(cluster.cluster, node)
        if pid is not None:
            procs.signal_group(pid, signal.SIGCONT)


def _wait_stopped(pgid: int, timeout: float = 5.0) -> None:
    """Return once every process of the group has stopped (signals arrive a moment later)."""
    deadline = time.monotonic() + timeout
    while any(state not in "TZX" for state in group_states(pgid).values()):  # dead: as good
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} did not stop: {group_states(pgid)}")
        time.sleep(0.01)


def group_states(pgid: int) -> dict[int, str]:
    """The state letter (R, S, T for stopped, ...) of every process in group `pgid`."""
    states = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
                states[int(stat.parent.name)] = fields[0]
    return states
