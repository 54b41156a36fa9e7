"""Work that holds a core for a while, run where it does not stop the node.

A node is one gevent worker: every request, lease renewal and Raft tick
shares one OS thread. A call that keeps the CPU without yielding (a password
hash, a SQLite query over most of a table) would stop them all meanwhile.
Run in gevent's pool of real threads, it lets go of the GIL (argon2 and
SQLite both do) and the loop runs on. Outside gevent (tests, tools) the work
runs in place. The work must use no lock or pool of the process: those are
gevent's, and belong to the loop's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gevent import get_hub, monkey

T = TypeVar("T")


def off_loop(work: Callable[..., T], *args) -> T:
    if monkey.is_module_patched("threading"):
        return get_hub().threadpool.apply(work, args)
    return work(*args)
