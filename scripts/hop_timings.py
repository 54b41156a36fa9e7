#!/usr/bin/env python3
"""Where a request's time goes: one hop at a time, sequential, on a fresh cluster.

    .venv/bin/python scripts/hop_timings.py

Each line is the mean of 60 sequential calls, so it is the CPU cost of that
path (nothing overlaps). The front-end buy is the sum of its hops.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cluster import LocalCluster  # noqa: E402

TUNING = {"health_period": 0.5, "sender_period": 0.5, "startup_grace": 5.0}


def timed(label: str, call, n: int = 60) -> None:
    call()
    started = time.perf_counter()
    for _ in range(n):
        call()
    print(f"{label:<40} {(time.perf_counter() - started) / n * 1000:7.2f} ms", flush=True)


def main() -> None:
    c = LocalCluster(Path(tempfile.mkdtemp(prefix="bazar-hops-")), tuning=TUNING).up()
    try:
        for book_id in range(1, 8):
            c.api.set_quantity(book_id, 10**9)
        row = c.call("catalog-1", "GET", "/lookup/1").json()
        timed(
            "health, unsigned (HTTP floor)",
            lambda: c.api.http.get(c.url_of("catalog-1") + "/health"),
        )
        timed("front-end lookup, cached", lambda: c.api.lookup(1))
        timed(
            "front-end lookup, no-cache",
            lambda: c.api.get("/lookup/1", headers={"Cache-Control": "no-cache"}),
        )
        timed("catalog lookup, signed", lambda: c.call("catalog-1", "GET", "/lookup/1"))
        timed(
            "catalog backup applies one entry",
            lambda: c.call("catalog-2", "POST", "/sync", json={"entries": [{"book": row}]}),
        )
        timed(
            "catalog buy (txn + push to backup)",
            lambda: c.call(
                "catalog-1", "POST", "/buy/1", json={"order_id": uuid.uuid4().hex, "quantity": 1}
            ),
        )
        timed(
            "order buy (+ catalog + push to peer)",
            lambda: c.call(
                "order-1",
                "POST",
                "/buy/1",
                json={"quantity": 1, "idempotency_key": uuid.uuid4().hex},
            ),
        )
        timed("front-end buy (everything)", lambda: c.api.buy(1, key=uuid.uuid4().hex))
        timed("front-end staff update", lambda: c.api.set_price(2, 33))
    finally:
        c.down()
        shutil.rmtree(c.root, ignore_errors=True)


if __name__ == "__main__":
    main()
