"""Shared fixtures: real clusters on free loopback ports. And CI's rule: under CI=true a
skipped partition, clock, browser or Prometheus test fails the run (tests/support/tiers.py)."""

from __future__ import annotations

import os

import pytest

from common.ops import procs
from tests.support import tiers
from tests.support.cluster import LocalCluster

_SKIPPED_FILES: list[str] = []  # tier files skipped whole at collection, under CI=true


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test of a tier, under CI=true, is reported failed, with the reason."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = tiers.skip_reason(report.longrepr)
        failure = tiers.skip_failure(report.nodeid, reason, os.environ)
        if failure:
            report.outcome = "failed"
            report.longrepr = failure
    return report


def pytest_collectreport(report):
    """A tier file skipped whole (a module-level skip) cannot fail as a test: it fails the
    session at the end, so every other test still runs."""
    if report.skipped:
        reason = tiers.skip_reason(report.longrepr)
        failure = tiers.skip_failure(report.nodeid, reason, os.environ)
        if failure:
            _SKIPPED_FILES.append(failure)


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED_FILES and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _SKIPPED_FILES:
        terminalreporter.section("tiers that must run under CI=true", red=True)
        for failure in _SKIPPED_FILES:
            terminalreporter.line(failure, red=True)


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
