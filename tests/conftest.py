"""Shared fixtures: real clusters on free loopback ports. And CI's rule: under CI=true a
skipped partition, clock, browser or Prometheus test fails the run (tests/support/tiers.py)."""

from __future__ import annotations

import os
from pathlib import Path

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
    the other and both use `shared_cluster` share one (`pytest_collection_modifyitems`
    puts them next to each other): the next module gets it only if the lease has not
    moved and every node is up, or comes up when started again (else it gets a new
    one), and it is killed as soon as no test that is left before the next module
    uses it (an idle cluster takes a quarter of a core from the tests around it).
    Tests on it leave it as they found it, as they always had to within a module:
    they restore the prices and stock they change, or use books of their own.
    """

    cluster: LocalCluster | None = None  # handed over, for the next module
    live: LocalCluster | None = None  # the one the running module uses
    next_item: pytest.Item | None = None  # the test after the one tearing down
    users: set[str] | None = None  # modules (node ids) with a test that uses it
    last_use: dict[str | None, str] | None = None  # module -> its last test using it

    @classmethod
    def _index(cls, session: pytest.Session) -> None:
        if cls.users is None:
            cls.users, cls.last_use = set(), {}
            for item in session.items:
                if "shared_cluster" in getattr(item, "fixturenames", ()):
                    cls.users.add(_module_of(item))
                    cls.last_use[_module_of(item)] = item.nodeid

    @classmethod
    def next_module_uses_it(cls, session: pytest.Session) -> bool:
        if cls.next_item is None:
            return False
        cls._index(session)
        return _module_of(cls.next_item) in cls.users

    @classmethod
    def take(cls) -> LocalCluster | None:
        cluster, cls.cluster = cls.cluster, None
        if cluster is not None and not _restored(cluster):
            cluster.discard()
            return None
        return cluster

    @classmethod
    def done_with(cls, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """After `item`: if no test left in its module uses the cluster and the next
        module does not either, kill it now, not when the module ends."""
        if cls.live is None or nextitem is None or _module_of(nextitem) != _module_of(item):
            return  # the fixture's own teardown decides at the module's end
        cls._index(item.session)
        if cls.last_use.get(_module_of(item)) != item.nodeid:
            return
        following = item.session.items.index(nextitem)
        later = (i for i in item.session.items[following:] if _module_of(i) != _module_of(item))
        if _module_of(next(later, nextitem)) not in cls.users:
            cls.live.discard()
            cls.live = None


def _as_started(cluster: LocalCluster) -> bool:
    """Every node up, and the lease where a fresh start puts it: the first catalog
    holds epoch 1 (tests may count on that, as `bazar status` tests do)."""
    if not all(cluster.state(name) == "up" for name in cluster.cluster.nodes):
        return False
    return _lease_as_started(cluster)


def _lease_as_started(cluster: LocalCluster) -> bool:
    first = cluster.names("catalog")[0]
    _, body = procs.health(cluster.node(first))
    return body.get("role") == "primary" and (body.get("lease") or {}).get("epoch") == 1


def _restored(cluster: LocalCluster) -> bool:
    """`_as_started`, after starting again the nodes a module left down (an order
    server or a backup, killed by its last test): about 2 s where a new cluster costs
    3 s and twice the CPU. A moved lease cannot be put back: False."""
    if not _lease_as_started(cluster):
        return False
    down = [name for name in cluster.cluster.nodes if cluster.state(name) == "down"]
    try:
        for name in down:
            cluster.start(name, wait=False)
        for name in cluster.cluster.nodes:
            cluster.wait_state(name, "up", timeout=30)
    except AssertionError:
        return False
    return _as_started(cluster)


def pytest_collection_modifyitems(session, config, items):
    """The modules that use `shared_cluster` run one after the other, where the first of
    them would run, so one cluster serves them all (`_HandOver`; under `make test`'s
    xdist, a worker's modules in a row). The slow tiers go first. Every other module,
    and the order within each module, stays as collected. Run in collection order, a module
    without it between two with it made the next one start a cluster of its own: nine
    starts in a full run, about 3 s of both cores each."""
    modules: dict[str | None, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(_module_of(item), []).append(item)
    users = [
        name
        for name, its in modules.items()
        if any("shared_cluster" in getattr(it, "fixturenames", ()) for it in its)
    ]
    ordered: list[pytest.Item] = []
    for name, its in modules.items():
        if users and name == users[0]:
            for user in users:
                ordered += modules[user]
        elif name not in users:
            ordered += its
    items[:] = sorted(ordered, key=lambda item: not _slow_tier(item))  # a stable sort


# The tiers whose modules take tens of seconds each: run first, so that under
# `make test`'s xdist workers no long module is left alone at the end.
SLOW_TIERS = ("fuzz", "partitions", "faults", "loadtests", "clocks", "browser")


# Modules that make network namespaces take one lock for the host (tests/support/hostlock.py).
# As scopes of their own, xdist gave two of them to both workers at once and one worker
# waited, idle, for the other: 47 s of a full run's 456. One scope runs them one after
# another on one worker, while the other worker goes on with the rest.
NETNS_MODULES = ("tests/partitions/", "tests/clocks/test_clock_faults.py")
NETNS_SCOPE = "tests/partitions/ with tests/clocks/test_clock_faults.py"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` (`make test`), with the netns modules as one scope."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NetnsModulesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return NETNS_SCOPE if scope.startswith(NETNS_MODULES) else scope

    return NetnsModulesTogether(config, log)


def _slow_tier(item: pytest.Item) -> bool:
    return Path(str(item.path)).parent.name in SLOW_TIERS


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
        _HandOver.done_with(item, nextitem)
        if nextitem is None and _HandOver.cluster is not None:
            _HandOver.cluster.discard()
            _HandOver.cluster = None


@pytest.fixture(scope="module")
def shared_cluster(request, tmp_path_factory):
    """One running cluster for a whole test module (tests must not break it)."""
    cluster = _HandOver.take() or LocalCluster(tmp_path_factory.mktemp("cluster")).up()
    _HandOver.live = cluster
    yield cluster
    if _HandOver.live is cluster and _HandOver.next_module_uses_it(request.session):
        _HandOver.cluster = cluster
    else:
        cluster.discard()  # again, if `done_with` did: nothing left to kill
    _HandOver.live = None


@pytest.fixture
def fresh_cluster(tmp_path):
    """A new running cluster for one test that kills or restarts nodes."""
    cluster = LocalCluster(tmp_path / "cluster").up()
    yield cluster
    cluster.discard()
