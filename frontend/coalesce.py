"""Request coalescing: concurrent misses for the same key share one backend call.

The first caller (the leader) runs the fetch; callers arriving while it is
in flight wait for its result. An invalidation `forget`s the flight, so a
request that starts after a write never joins a fetch that may predate it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class Coalescer:
    def __init__(self, wait_timeout: float = 30.0):
        self._flights: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.wait_timeout = wait_timeout
        self.leaders = 0  # backend calls made
        self.followers = 0  # callers served by someone else's call

    def run(self, key: Hashable, fetch: Callable[[], Any]) -> Any:
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if leading:
                flight = self._flights[key] = Future()
                self.leaders += 1
            else:
                self.followers += 1
        if not leading:
            return flight.result(self.wait_timeout)
        try:
            result = fetch()
        except BaseException as e:
            flight.set_exception(e)
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Let new callers start a fresh fetch for every key that `match`es."""
        with self._lock:
            for key in [k for k in self._flights if match(k)]:
                del self._flights[key]
