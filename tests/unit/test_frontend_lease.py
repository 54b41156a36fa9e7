"""The front-end under read leases (design §7 rule 7), through its Flask app.

POST /lease (fence, invalidations, grant), DELETE /invalidate with epoch and
version, lookups and searches with and without a lease, Cache-Control
max-stale / no-cache and Age, /health. The catalog is a scripted stand-in
for the router (these are unit tests of the front-end's rules); the e2e
tests talk to real nodes.
"""

from __future__ import annotations

import json
import math
import secrets
import time

import pytest

import frontend
from common.auth import NONCE_HEADER, SIG_HEADER, TS_HEADER, signature, signed_target
from common.cluster import NoReplica
from common.lease.clock import FakeClock
from frontend.freshness import DELTA_SECONDS_CAP, Freshness, parse
from frontend.services import lookup_calls

SECRET = "cluster-secret-0123456789"
CONFIG = f"""
data_dir = "../data"

[auth]
staff_token = "staff-token-0123456789"
cluster_secret = "{SECRET}"

[nodes.frontend-1]
service = "frontend"
url = "http://127.0.0.1:8000"

[nodes.catalog-1]
service = "catalog"
url = "http://127.0.0.1:8101"

[nodes.order-1]
service = "order"
url = "http://127.0.0.1:8201"

[nodes.recovery-1]
service = "recovery"
url = "http://127.0.0.1:8301"
"""
DRIFT = 0.01  # the default max_drift
TRUSTED = 2.0 * (1 - DRIFT)  # a default read_lease grant, as trusted by the front-end


class Reply:
    def __init__(self, status: int, body, node: str = "catalog-1"):
        self.status_code = status
        self._body = body
        self.node = node

    def json(self):
        return self._body


class Catalog:
    """Stands in for the router: answers reads from a script of book versions."""

    def __init__(self):
        self.versions = {1: [1]}  # book id -> versions to answer, the last one repeats
        self.down = False
        self.reads: list[str] = []

    def book(self, book_id: int) -> dict:
        queue = self.versions[book_id]
        version = queue.pop(0) if len(queue) > 1 else queue[0]
        title = f"book {book_id}"
        return {"id": book_id, "title": title, "topic": "spring", "cost": 10.0 + version,
                "quantity": 5, "version": version}  # fmt: skip

    def read(self, service: str, method: str, path: str, **kw):
        if path == "/batch/lookups":  # a front-end's misses read together
            ids = kw["json"]["ids"]
            self.reads += [f"/lookup/{book_id}" for book_id in ids]
            if self.down:
                raise NoReplica(service)
            found = [self.book(book_id) for book_id in ids if book_id in self.versions]
            missing = [book_id for book_id in ids if book_id not in self.versions]
            return Reply(200, {"books": found, "missing": missing})
        self.reads.append(path)
        if self.down:
            raise NoReplica(service)
        kind, _, arg = path.strip("/").partition("/")
        if kind == "lookup":
            book_id = int(arg)
            if book_id not in self.versions:
                return Reply(404, {"message": "no such book"})
            return Reply(200, self.book(book_id))
        hits = [{"id": b, "title": f"book {b}"} for b in sorted(self.versions)]
        return Reply(200, {"entries": hits, "next": None})


@pytest.fixture
def clock():
    return FakeClock(start=time.time())  # signatures are checked against real time


@pytest.fixture
def app(tmp_path, monkeypatch, clock):
    for name in ("BAZAR_CONFIG", "BAZAR_STAFF_TOKEN", "BAZAR_CLUSTER_SECRET"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "cluster.toml").write_text(CONFIG)
    monkeypatch.setattr(frontend, "Clock", lambda: clock)
    app = frontend.create_app("frontend-1", str(folder / "cluster.toml"), {"BACKGROUND": False})
    app.extensions["frontend.router"] = fake = Catalog()
    app.extensions["frontend.reads"] = lookup_calls(fake, 1)
    return app


@pytest.fixture
def catalog(app) -> Catalog:
    return app.extensions["frontend.router"]


@pytest.fixture
def client(app):
    return app.test_client()


def signed(client, method: str, path: str, body=None):
    """A call signed with the cluster secret, as another node would make it."""
    raw = b"" if body is None else json.dumps(body).encode()
    timestamp, nonce = f"{time.time():.3f}", secrets.token_hex(12)
    target_path, _, query = path.partition("?")
    headers = {
        TS_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIG_HEADER: signature(
            SECRET, method, signed_target(target_path, query), timestamp, nonce, raw
        ),
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    return client.open(path, method=method, data=raw, headers=headers)


def stamp(client) -> dict:
    """What the front-end put in its last answer to the primary (its own clock)."""
    return client.application.extensions["frontend.cache"].lease.stamp()


def grant(client, clock, epoch=1, invalidate=None, lease=..., searches=False):
    body = {"epoch": epoch, "lease": {**stamp(client), "length": 2.0} if lease is ... else lease}
    if body["lease"] is None:
        del body["lease"]  # no grant: no field
    if invalidate is not None:
        body["invalidate"] = invalidate
    if searches:
        body["searches"] = True
    return signed(client, "POST", "/lease", body)


def health(client) -> dict:
    return client.get("/health").get_json()


# -- POST /lease -----------------------------------------------------------------


def test_a_lease_is_taken_and_the_newest_epoch_answered(client, clock):
    response = grant(client, clock, epoch=3)
    assert response.status_code == 200
    assert response.get_json() == {"epoch": 3, "stamp": stamp(client)}
    state = health(client)
    assert state["status"] == "up"
    assert state["lease"] == {"epoch": 3, "valid": True, "remaining": TRUSTED}


def test_a_lease_from_an_older_epoch_is_409(client, clock):
    assert grant(client, clock, epoch=5).status_code == 200
    response = grant(client, clock, epoch=4)
    assert response.status_code == 409
    assert response.get_json()["epoch"] == 5
    assert "older" in response.get_json()["message"]
    assert health(client)["lease"]["epoch"] == 5


def test_an_unsigned_lease_is_401(client, clock):
    response = client.post("/lease", json={"epoch": 1, "lease": {**stamp(client), "length": 2}})
    assert response.status_code == 401
    assert health(client)["lease"]["valid"] is False


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "epoch"),
        ({"epoch": 0}, "epoch"),
        ({"epoch": "1"}, "epoch"),
        ({"epoch": True}, "epoch"),
        ({"epoch": 1.5}, "epoch"),
        ({"epoch": 2**64}, "epoch"),
        ({"epoch": 1, "lease": "soon"}, "lease"),
        ({"epoch": 1, "lease": True}, "lease"),
        ({"epoch": 1, "lease": {"run": "r", "at": 1.0}}, "length"),
        ({"epoch": 1, "lease": {"run": "r", "at": "1", "length": 2}}, "at"),
        ({"epoch": 1, "lease": {"run": "", "at": 1.0, "length": 2}}, "run"),
        ({"epoch": 1, "lease": {"run": "r", "at": 1.0, "length": -2}}, "length"),
        ({"epoch": 1, "lease": None}, "lease"),
        ({"epoch": 1, "lease": {}}, "run"),
        ({"epoch": 1, "invalidate": [1]}, "invalidate"),
        ({"epoch": 1, "invalidate": {"one": 2}}, "invalidate"),
        ({"epoch": 1, "invalidate": {"-1": 2}}, "invalidate"),
        ({"epoch": 1, "invalidate": {"99999999999999999999": 2}}, "invalidate"),
        ({"epoch": 1, "invalidate": {"1": "2"}}, "invalidate"),
        ({"epoch": 1, "invalidate": {"1": 0}}, "invalidate"),
        ({"epoch": 1, "invalidate": {"1": None}}, "invalidate"),
    ],
)
def test_a_bad_lease_body_is_400_and_changes_nothing(client, body, field):
    response = signed(client, "POST", "/lease", body)
    assert response.status_code == 400
    assert field in response.get_json()["message"]
    assert health(client)["lease"] == {"epoch": 0, "valid": False, "remaining": 0.0}


@pytest.mark.parametrize("extra", [{"until": 5.0}, {"holder": "catalog-1"}])
def test_a_field_this_version_does_not_know_is_ignored_and_grants_nothing(client, extra):
    """Signed bodies drop unknown fields (docs/upgrading.md): a primary's `until` (the
    wall-clock lease of before v2) or any other field grants no lease; only `lease` does."""
    response = signed(client, "POST", "/lease", {"epoch": 1, **extra})
    assert response.status_code == 200
    assert health(client)["lease"]["valid"] is False


@pytest.mark.parametrize(
    "raw",
    [
        b'{"epoch": 1, "lease": {"run": "r", "at": 1e400, "length": 2}}',
        b'{"epoch": 1, "lease": {"run": "r", "at": 1, "length": NaN}}',
    ],
)
def test_an_infinite_lease_is_400(client, raw):
    timestamp, nonce = f"{time.time():.3f}", secrets.token_hex(12)
    headers = {
        TS_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIG_HEADER: signature(SECRET, "POST", "/lease", timestamp, nonce, raw),
    }
    response = client.post("/lease", data=raw, headers=headers, content_type="application/json")
    assert response.status_code == 400


def test_a_lease_without_a_grant_only_invalidates(client, clock, catalog):
    assert grant(client, clock).status_code == 200
    client.get("/lookup/1")
    response = grant(client, clock, invalidate={"1": 2}, lease=None)
    assert response.status_code == 200
    assert health(client)["lease"]["valid"] is True  # the standing grant still holds
    catalog.versions[1] = [2]
    assert client.get("/lookup/1").get_json()["cost"] == 12.0


def test_invalidations_drop_entries_and_refills_no_older_than_announced(client, clock, catalog):
    grant(client, clock)
    assert client.get("/lookup/1").get_json()["cost"] == 11.0
    assert client.get("/lookup/1").get_json()["cost"] == 11.0
    assert len(catalog.reads) == 1  # the second was a hit
    catalog.versions[1] = [1, 2]  # the first replica read has not got the push yet
    assert grant(client, clock, invalidate={"1": 2}).status_code == 200
    assert client.get("/lookup/1").get_json()["cost"] == 12.0
    assert len(catalog.reads) == 3  # version 1 was below the floor: read again
    assert client.get("/lookup/1").get_json()["cost"] == 12.0
    assert len(catalog.reads) == 3


def test_a_book_that_stays_below_its_floor_is_503_after_three_reads(client, clock, catalog):
    grant(client, clock, invalidate={"1": 9})
    response = client.get("/lookup/1")
    assert response.status_code == 503
    assert len(catalog.reads) == 3


def test_a_grant_after_a_lapse_makes_cached_books_stale(client, clock, catalog):
    grant(client, clock)
    client.get("/lookup/1")
    clock.advance(TRUSTED + 0.1)
    grant(client, clock)
    client.get("/lookup/1")
    assert len(catalog.reads) == 2
    assert health(client)["cache"]["lapses"] == 2


# -- DELETE /invalidate ----------------------------------------------------------


def test_invalidate_without_parameters_still_drops_the_book(app, client, clock, catalog):
    grant(client, clock)
    client.get("/lookup/1")
    response = signed(client, "DELETE", "/invalidate/1")
    assert response.status_code == 200
    assert response.get_json() == {"invalidated": 1, "epoch": 1}
    client.get("/lookup/1")
    assert len(catalog.reads) == 2


def test_invalidate_with_epoch_and_version_fences_and_records_a_floor(app, client, clock):
    grant(client, clock, epoch=2)
    assert signed(client, "DELETE", "/invalidate/1?epoch=2&version=7").status_code == 200
    assert app.extensions["frontend.cache"].floor(1) == 7
    response = signed(client, "DELETE", "/invalidate/1?epoch=1&version=8")
    assert response.status_code == 409
    assert app.extensions["frontend.cache"].floor(1) == 7


@pytest.mark.parametrize("query", ["epoch=0", "version=x", "epoch=-1", "version=1.5"])
def test_invalidate_with_a_bad_query_is_400(client, query):
    assert signed(client, "DELETE", f"/invalidate/1?{query}").status_code == 400


# -- lookups and searches --------------------------------------------------------


def test_without_a_lease_every_lookup_reads_a_replica(client, catalog):
    for _ in range(3):
        response = client.get("/lookup/1")
        assert response.status_code == 200
        assert "Age" not in response.headers
    assert len(catalog.reads) == 3
    assert health(client)["cache"]["hits"] == 0


def test_no_cache_reads_a_replica_despite_a_fresh_entry(client, clock, catalog):
    grant(client, clock)
    client.get("/lookup/1")
    client.get("/lookup/1", headers={"Cache-Control": "no-cache"})
    assert len(catalog.reads) == 2


def test_max_stale_serves_the_last_known_book_with_age_when_no_replica_answers(
    client, clock, catalog
):
    grant(client, clock)
    client.get("/lookup/1")
    clock.advance(TRUSTED + 5)  # the lease ran out 5 s ago
    catalog.down = True
    assert client.get("/lookup/1").status_code == 503
    assert client.get("/lookup/1", headers={"Cache-Control": "max-stale=4"}).status_code == 503
    response = client.get("/lookup/1", headers={"Cache-Control": "max-stale=5"})
    assert response.status_code == 200
    assert response.get_json()["cost"] == 11.0
    assert response.headers["Age"] == str(math.floor(TRUSTED + 5))
    assert client.get("/lookup/1", headers={"Cache-Control": "max-stale"}).status_code == 200
    no_cache = {"Cache-Control": "no-cache, max-stale"}
    assert client.get("/lookup/1", headers=no_cache).status_code == 503
    assert health(client)["cache"]["stale_served"] == 2


def test_max_stale_still_prefers_a_fresh_read(client, clock, catalog):
    grant(client, clock)
    client.get("/lookup/1")
    signed(client, "DELETE", "/invalidate/1")
    catalog.versions[1] = [2]
    response = client.get("/lookup/1", headers={"Cache-Control": "max-stale"})
    assert response.get_json()["cost"] == 12.0
    assert "Age" not in response.headers


def test_max_stale_does_not_hide_a_404(client, clock, catalog):
    grant(client, clock)
    client.get("/lookup/1")
    signed(client, "DELETE", "/invalidate/1")
    del catalog.versions[1]
    assert client.get("/lookup/1", headers={"Cache-Control": "max-stale"}).status_code == 404


def test_searches_follow_the_lease_and_max_stale(client, clock, catalog):
    assert client.get("/search/spring").status_code == 200
    grant(client, clock)
    client.get("/search/spring")
    client.get("/search/spring")
    assert len(catalog.reads) == 2  # one without the lease, one to fill the cache
    client.get("/search/spring", headers={"Cache-Control": "no-cache"})
    assert len(catalog.reads) == 3
    grant(client, clock, invalidate={"1": 2})  # a price: the page shows none
    catalog.down = True
    assert client.get("/search/spring").status_code == 200
    grant(client, clock, searches=True)  # a book added, withdrawn or renamed
    clock.advance(1)
    assert client.get("/search/spring").status_code == 503
    response = client.get("/search/spring", headers={"Cache-Control": "max-stale=1"})
    assert response.status_code == 200
    assert response.headers["Age"] == "1"


# -- documents -------------------------------------------------------------------


def test_the_openapi_document_describes_the_lease_and_the_cache_headers(client):
    spec = client.get("/openapi.json").get_json()
    lease = spec["paths"]["/lease"]["post"]
    assert lease["security"] == [{"cluster": []}]
    assert {"200", "400", "401", "409"} <= set(lease["responses"])
    for path in ("/lookup/{book_id}", "/search/{topic}"):
        names = [p["name"] for p in spec["paths"][path]["get"]["parameters"]]
        assert "Cache-Control" in names
    invalidate = spec["paths"]["/invalidate/{book_id}"]["delete"]
    assert {"epoch", "version"} <= {p["name"] for p in invalidate["parameters"]}


# -- Cache-Control parsing -------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, Freshness()),
        ("", Freshness()),
        ("no-cache", Freshness(no_cache=True)),
        ("No-Cache", Freshness(no_cache=True)),
        ("max-stale", Freshness(max_stale=math.inf)),
        ("max-stale=30", Freshness(max_stale=30.0)),
        ('max-stale="30"', Freshness(max_stale=30.0)),
        (" MAX-STALE = 7 ", Freshness(max_stale=7.0)),
        ("no-cache, max-stale=0", Freshness(no_cache=True, max_stale=0.0)),
        ("max-stale=5, max-stale=9", Freshness(max_stale=9.0)),
        ("max-stale=abc", Freshness()),
        ("max-stale=-1", Freshness()),
        ("max-stale=1.5", Freshness()),
        ("max-stale=" + "9" * 5000, Freshness(max_stale=float(DELTA_SECONDS_CAP))),
        ("max-stale=0000000000000000000012", Freshness(max_stale=12.0)),
        ("max-age=0", Freshness()),
    ],
)
def test_cache_control_parsing(header, expected):
    assert parse(header) == expected
