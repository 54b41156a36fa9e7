"""Shared fixtures: real clusters on free loopback ports."""

from __future__ import annotations

import pytest

from common.ops import procs
from tests.support.cluster import LocalCluster


class _HandOver:
    """The `shared_cluster` of a module that ended, kept for the module that runs next.

    Starting a cluster costs seconds of both cores, so modules that run one after
    the other and both use `shared_cluster` share one: the next module gets it
    only if every node is still up and the lease has not moved (else it gets a
    new one), and it is killed as soon as the next module does not use it (an
    idle cluster takes a quarter of a core from the tests around it). Tests on
    it leave it as they found it, as they always had to within a module: they
    restore the prices and stock they change.
    """

    cluster: LocalCluster | None = None
    next_item: pytest.Item | None = None  # the test after the one tearing down
    users: set[str] | None = None  # modules (node ids) with a test that uses it

    @classmethod
    def next_module_uses_it(cls, session: pytest.Session) -> bool:
        if cls.next_item is None:
            return False
        if cls.users is None:
            cls.users = {
                _module_of(item)
                for item in session.items
                if "shared_cluster" in getattr(item, "fixturenames", ())
            }
        return _module_of(cls.next_item) in cls.users

    @classmethod
    def take(cls) -> LocalCluster | None:
        cluster, cls.cluster = cls.cluster, None
        if cluster is not None and not _as_started(cluster):
            cluster.discard()
            return None
        return cluster


def _as_started(cluster: LocalCluster) -> bool:
    """Every node up, and the lease where a fresh start puts it: the first catalog
    holds epoch 1 (tests may count on that, as `bazar status` tests do)."""
    if not all(cluster.state(name) == "up" for name in cluster.cluster.nodes):
        return False
    first = cluster.names("catalog")[0]
    _, body = procs.health(cluster.node(first))
    return body.get("role") == "primary" and (body.get("lease") or {}).get("epoch") == 1


def _module_of(item: pytest.Item) -> str | None:
    module = getattr(item, "module", None)
    return module.__name__ if module is not None else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    _HandOver.next_item = nextitem
    try:
        return (yield)
    finally:
        _HandOver.next_item = None
        if nextitem is None and _HandOver.cluster is not None:
            _HandOver.cluster.discard()
            _HandOver.cluster = None


@pytest.fixture(scope="module")
def shared_cluster(request, tmp_path_factory):
    """One running cluster for a whole test module (tests must not break it)."""
    cluster = _HandOver.take() or LocalCluster(tmp_path_factory.mktemp("cluster")).up()
    yield cluster
    if _HandOver.next_module_uses_it(request.session):
        _HandOver.cluster = cluster
    else:
        cluster.discard()


@pytest.fixture
def fresh_cluster(tmp_path):
    """A new running cluster for one test that kills or restarts nodes."""
    cluster = LocalCluster(tmp_path / "cluster").up()
    yield cluster
    cluster.discard()
