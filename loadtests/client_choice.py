#!/usr/bin/env python3
"""Which HTTP client and JSON codec the nodes use to call each other, by measurement.

    .venv/bin/python loadtests/client_choice.py [--calls 2000]

Against the bare ceiling server (gevent worker), sequential keep-alive calls: a GET
of a book and a POST of a replication-sized JSON body. Prints the CLIENT process's
CPU per call (time.process_time: the server's cost is the same for every client),
and the CPU of encoding and decoding that body with json and orjson. httpx and
orjson are measured only if installed (pip install httpx orjson).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.benchkit import Ceiling  # noqa: E402

BODY = {
    "entries": [
        {
            "order": {
                "order_id": f"k{n:031d}",
                "book_id": 3,
                "quantity": 1,
                "status": "applied",
                "total": 19.99,
                "items": '[{"book_id":3,"quantity":1,"unit_price":"19.99"}]',
            },
            "books": [
                {
                    "id": 3,
                    "title": "Xen and the Art of Surviving Undergraduate School",
                    "topic": "undergraduate school",
                    "cost": 19.99,
                    "quantity": 999_000 + n,
                    "version": 1000 + n,
                    "deleted_at": None,
                    "delete_comment": None,
                }
            ],
            "epoch": 4,
        }
        for n in range(4)
    ]
}
HEADERS = {"Content-Type": "application/json"}


def per_call_us(call, calls: int) -> float:
    for _ in range(50):  # connect and warm up
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def clients(url: str, payload: bytes) -> dict:
    import requests
    import urllib3

    session = requests.Session()
    session.trust_env = False
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(url.rsplit(":", 1)[1]), maxsize=4)
    found = {
        "requests.Session": (
            lambda: session.get(url + "/lookup/1").json(),
            lambda: session.post(url + "/echo", data=payload, headers=HEADERS).json(),
        ),
        "urllib3 pool": (
            lambda: json.loads(pool.request("GET", "/lookup/1").data),
            lambda: json.loads(pool.request("POST", "/echo", body=payload, headers=HEADERS).data),
        ),
    }
    if importlib.util.find_spec("httpx"):
        import httpx

        client = httpx.Client(trust_env=False)
        found["httpx.Client"] = (
            lambda: client.get(url + "/lookup/1").json(),
            lambda: client.post(url + "/echo", content=payload, headers=HEADERS).json(),
        )
    return found


def codecs(calls: int) -> None:
    payload = json.dumps(BODY).encode()
    rows = [("json", lambda: json.dumps(BODY).encode(), lambda: json.loads(payload))]
    if importlib.util.find_spec("orjson"):
        import orjson

        rows.append(("orjson", lambda: orjson.dumps(BODY), lambda: orjson.loads(payload)))
    print(f"\nJSON codec, {len(payload)}-byte body ({calls * 10} times each):")
    for name, encode, decode in rows:
        print(
            f"  {name:<10} encode {per_call_us(encode, calls * 10):7.1f} us"
            f"   decode {per_call_us(decode, calls * 10):7.1f} us"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    ceiling = Ceiling("gevent", 8)
    try:
        payload = json.dumps(BODY).encode()
        print(f"client CPU per sequential call ({args.calls} calls each), microseconds:")
        print(f"  {'client':<18}{'GET book':>10}{'POST ' + str(len(payload)) + ' B':>12}")
        for name, (get, post) in clients(ceiling.url, payload).items():
            print(
                f"  {name:<18}{per_call_us(get, args.calls):>10.0f}"
                f"{per_call_us(post, args.calls):>12.0f}"
            )
    finally:
        ceiling.stop()
    codecs(args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
