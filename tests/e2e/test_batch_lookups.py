"""Batched catalog reads (POST /batch/lookups): a front-end's concurrent cache misses of
different books share one signed read of any catalog replica, each book answered as
`GET /lookup/<id>` would answer it (docs/consistency.md, next to request coalescing).
"""

from __future__ import annotations

import re
import threading

import pytest
import requests

MISSING = 10**12
NO_CACHE = {"Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


def lookups(cluster, node: str, ids):
    return cluster.call(node, "POST", "/batch/lookups", json={"ids": ids})


def test_each_replica_answers_every_book_as_a_lookup_would(cluster):
    for node in cluster.names("catalog"):
        response = lookups(cluster, node, [3, MISSING, 1, 3])
        assert response.status_code == 200, response.text
        body = response.json()
        assert [book["id"] for book in body["books"]] == [3, 1]  # asked order, once each
        assert body["missing"] == [MISSING]
        for book in body["books"]:
            alone = cluster.call(node, "GET", f"/lookup/{book['id']}").json()
            assert book == alone  # the version too: a front-end checks it against invalidations


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": list(range(1, 66))}, {"ids": ["1"]}, {"ids": [True]}, {"ids": [-1]}],
)
def test_a_malformed_batch_is_400(cluster, body):
    response = cluster.call("catalog-1", "POST", "/batch/lookups", json=body)
    assert response.status_code == 400, response.text
    assert "message" in response.json()


def test_an_unsigned_batch_is_refused(cluster):
    response = requests.post(
        cluster.url_of("catalog-1") + "/batch/lookups", json={"ids": [1]}, timeout=10
    )
    assert response.status_code == 401


def test_concurrent_misses_of_different_books_share_reads_and_answer_each_book(cluster):
    before = _reads(cluster)
    answers: list[tuple[int, int, float]] = []
    lock = threading.Lock()

    def customer(first: int):
        session = requests.Session()  # one each: a Session is not for several threads
        for i in range(12):
            book_id = (first + i) % 7 + 1
            r = session.get(f"{cluster.api.url}/lookup/{book_id}", headers=NO_CACHE, timeout=30)
            with lock:
                answers.append((book_id, r.status_code, r.json().get("id")))

    threads = [threading.Thread(target=customer, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 144
    assert all(code == 200 and got == asked for asked, code, got in answers)
    assert _reads(cluster) - before < len(answers)  # some misses rode another's read
    missing = cluster.api.get(f"/lookup/{MISSING}", headers=NO_CACHE)
    assert missing.status_code == 404 and str(MISSING) in missing.json()["message"]


def _reads(cluster) -> float:
    """Catalog reads of books the front-end made, both kinds, over every replica."""
    total = 0.0
    for node in cluster.names("catalog"):
        text = cluster.call(node, "GET", "/metrics").text
        for route in ("/batch/lookups", "/lookup/{book_id}"):
            labels = rf'method="\w+",route="{re.escape(route)}",status="200"'
            pattern = rf"^bazar_http_requests_total\{{{labels}\}} (\S+)$"
            total += sum(float(v) for v in re.findall(pattern, text, re.M))
    return total
