"""Finished requests, handed over with one list append and counted and logged in batches.

A serving thread that counted into prometheus-client itself would take its
lock three times per request (multiprocess values share one lock) and format
its log line: with a front-end's 32 threads that contention cost about 8% of a
cached lookup's throughput (measured with `loadtests/ab.py`). So the serving
thread only appends a record here; one thread folds the records into the
metrics and the log every `FLUSH_PERIOD` under load, every `QUIET_PERIOD` when
few requests came (each wake-up of an idle process costs about as much CPU as a
request: docs/performance.md, "What an idle cluster pays for"), and /metrics
folds what is pending before it answers, so a scrape never misses a finished
request. A log line reaches the file at most `QUIET_PERIOD` after its request
(lost only if the node is SIGKILLed within that time).
"""

from __future__ import annotations

import atexit
import bisect
import collections
import logging
import math
import re
import threading
import time

from common.observe.metrics import HTTP_LATENCY, HTTP_REQUESTS
from common.observe.requestlog import RequestLog

log = logging.getLogger(__name__)

FLUSH_PERIOD = 0.2  # seconds between batches under load: a fold blocks a gevent worker
QUIET_PERIOD = 1.0  # seconds between batches after a small one
SMALL_BATCH = 100  # records
UNMATCHED = "unmatched"  # a path no route serves: one label, not one per path tried

# (wall time started, request id, calls made or None, method, Flask rule or None, path,
#  status line, seconds taken): strings and numbers only, so it keeps nothing else alive
Finished = tuple[float, str, list | None, str, str | None, str, str, float]


class Recorder:
    def __init__(self, request_log: RequestLog):
        self.log = request_log
        self._pending: list[Finished] = []
        self._lock = threading.Lock()  # one batch at a time: the thread or a scrape
        self._children: dict[tuple, tuple] = {}  # label set -> (counter, histogram) child
        self._routes: dict[str | None, str] = {None: UNMATCHED}

    def add(self, finished: Finished) -> None:
        """From a serving thread: list.append is atomic under the GIL, no lock taken."""
        self._pending.append(finished)

    def start(self) -> None:
        threading.Thread(target=self._every_period, name="request-recorder", daemon=True).start()
        atexit.register(self.fold)

    def fold(self) -> int:
        """Count and log every request finished since the last fold; how many."""
        with self._lock:
            batch, self._pending = self._pending, []
            lines, timings = [], {}
            for started, request_id, backends, method, rule, path, status, elapsed in batch:
                route, code = self._route(rule), int(status[:3])
                timings.setdefault(self._child(route, method, code), []).append(elapsed)
                lines.append(
                    self.log.line(started, request_id, backends, method, route, path, code, elapsed)
                )
            for (count, timing), elapsed in timings.items():  # a few writes per label set
                count.inc(len(elapsed))
                observe_all(timing, elapsed)
            self.log.append(lines)
            return len(batch)

    def _every_period(self) -> None:
        folded = 0
        while True:
            time.sleep(FLUSH_PERIOD if folded >= SMALL_BATCH else QUIET_PERIOD)
            try:
                folded = self.fold()
            except OSError:  # a full disk must not take the node down; try again later
                log.warning("request log not written", exc_info=True)

    def _route(self, rule: str | None) -> str:
        """'/buy/<int(max=...):book_id>' -> '/buy/{book_id}', as in the OpenAPI document."""
        route = self._routes.get(rule)
        if route is None:
            route = self._routes[rule] = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
        return route

    def _child(self, route: str, method: str, status: int) -> tuple:
        """The (counter, histogram) children of one label set, made once."""
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:
            labels = (route, method, str(status))
            pair = self._children[key] = (
                HTTP_REQUESTS.labels(*labels),
                HTTP_LATENCY.labels(*labels),
            )
        return pair


def observe_all(histogram, values: list[float]) -> None:
    """`histogram.observe(v)` for every value, with one write per bucket touched and one
    for the sum instead of two per value: in multiprocess mode each write takes a lock
    and touches an mmap, about 2% of a cached lookup when done per request (py-spy).
    Reads prometheus-client's bucket attributes; unit-tested against `observe`."""
    bounds = histogram._upper_bounds  # ascending, the last is +Inf
    per_bucket = collections.Counter(bisect.bisect_left(bounds, v) for v in values)
    histogram._sum.inc(math.fsum(values))
    for bucket, n in per_bucket.items():
        histogram._buckets[bucket].inc(n)
