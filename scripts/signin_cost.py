#!/usr/bin/env python3
"""What signing in costs, and what it costs the customers meanwhile (issue 22).

    .venv/bin/python scripts/signin_cost.py [--tries 40]

Starts a cluster on loopback (the lockout raised out of the way), makes an
account, then times `POST /login` with the right password, a wrong one and
an unknown name (the last two should take as long as each other: an unknown
name still costs one Argon2 verification). Then it measures customers'
cached lookups through the same front-end, first alone and then while two
threads sign in without pause, and prints both latencies: the hash runs in
a real thread off the front-end's event loop, so lookups should barely move.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import threading
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.timing import timed  # noqa: E402
from tests.support.accounts import with_staff_settings  # noqa: E402
from tests.support.cluster import LocalCluster  # noqa: E402

PASSWORD = secrets.token_urlsafe(16)  # a fresh one each run


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{name:<34} median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   n={len(ms)}"


def login(http: requests.Session, url: str, name: str, password: str, want: int) -> None:
    response = http.post(f"{url}/login", json={"name": name, "password": password}, timeout=30)
    assert response.status_code == want, (response.status_code, response.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tries", type=int, default=40, help="sign-ins of each kind")
    args = parser.parse_args()
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="bazar-signin-")), orders=1)
    with_staff_settings(cluster, login_failures=100_000, address_failures=100_000)
    cluster.up()
    try:
        url = cluster.url_of("frontend-1")
        http = requests.Session()
        admin = {"Authorization": f"Bearer {cluster.cluster.staff_token}"}
        body = {"name": "ann", "role": "manager", "password": PASSWORD}
        assert http.post(f"{url}/staff", json=body, headers=admin, timeout=30).status_code == 201
        print(
            summary(
                "sign-in, right password",
                timed(lambda: login(http, url, "ann", PASSWORD, 200), args.tries),
            )
        )
        print(
            summary(
                "sign-in, wrong password",
                timed(lambda: login(http, url, "ann", "not it at all", 401), args.tries),
            )
        )
        print(
            summary(
                "sign-in, unknown name",
                timed(lambda: login(http, url, "nobody", "not it at all", 401), args.tries),
            )
        )
        lookup = lambda: http.get(f"{url}/lookup/1", timeout=30).raise_for_status()  # noqa: E731
        lookup()
        print(summary("cached lookup, alone", timed(lookup, 400)))
        stop = threading.Event()

        def sign_in_forever() -> None:
            own = requests.Session()
            while not stop.is_set():
                login(own, url, "ann", PASSWORD, 200)

        threads = [threading.Thread(target=sign_in_forever, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        print(summary("cached lookup, 2 signing in", timed(lookup, 400)))
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        cluster.discard()


if __name__ == "__main__":
    main()
