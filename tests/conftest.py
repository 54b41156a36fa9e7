"""Shared fixtures: real clusters on free loopback ports."""

from __future__ import annotations

import pytest

from tests.support.cluster import LocalCluster


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """One running cluster for a whole test module (tests must not break it)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster")).up()
    yield cluster
    cluster.down()


@pytest.fixture
def fresh_cluster(tmp_path):
    """A new running cluster for one test that kills or restarts nodes."""
    cluster = LocalCluster(tmp_path / "cluster").up()
    yield cluster
    cluster.down()
