"""CI's rule for the tiers that skip where a host lacks something (tests/support/tiers.py)."""

from __future__ import annotations

import pytest

from tests.support import tiers

CI = {"CI": "true"}


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/partitions/test_partitions.py::test_up", "partition"),
        ("tests/partitions/test_partition_suite.py", "partition"),
        ("tests/clocks/test_clock_faults.py::test_x", "clock"),
        ("tests/browser/test_cluster_page.py::test_page", "browser"),
        ("tests/e2e/test_prometheus.py::test_scrape", "Prometheus"),
        ("tests/e2e/test_metrics.py::test_x", None),
        ("tests/integration/test_deploy.py::test_systemd_analyze_verify_passes", "deploy"),
        ("tests/loadtests/test_bench.py::test_wrk", None),
        ("tests/unit/test_tiers.py", None),
    ],
)
def test_tier_of(nodeid, tier):
    assert tiers.tier_of(nodeid) == tier


def test_a_tier_skip_fails_only_under_ci_true():
    nodeid = "tests/browser/test_cluster_page.py::test_page"
    failure = tiers.skip_failure(nodeid, "no headless browser", CI)
    assert failure and "browser tier" in failure and "no headless browser" in failure
    assert nodeid in failure
    for env in ({}, {"CI": "false"}, {"CI": "1"}, {"GITHUB_ACTIONS": "true"}):
        assert tiers.skip_failure(nodeid, "no headless browser", env) is None


def test_a_skip_outside_the_tiers_stands_under_ci():
    assert tiers.skip_failure("tests/loadtests/test_bench.py::test_x", "no wrk", CI) is None


def test_skip_reason_from_a_report():
    assert tiers.skip_reason(("f.py", 3, "Skipped: gcc is missing")) == "gcc is missing"
    assert tiers.skip_reason("odd") == "odd"
