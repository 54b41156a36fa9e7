"""One test module at a time on this host makes network namespaces.

The partition tests clear what crashed runs left (tests/partitions/leftovers.py):
namespaces no live node is in. A cluster another xdist worker is bringing up has
its namespaces and bridge before its nodes, so it looked abandoned and lost its
bridge mid-`up` (seen under three workers). A lock file held for the module keeps
those modules, and the clock tier's netns test, one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "bazar-netns-tests.lock"


@contextlib.contextmanager
def netns_tests() -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield
