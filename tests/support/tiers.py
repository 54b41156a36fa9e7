"""Test tiers that skip where a host lacks something, and CI's rule for them.

Where root, `ip`/`nft`, gcc, Chromium, Prometheus, curl or systemd-analyze are missing,
those tiers skip with the reason, so a laptop still runs the rest. On CI (`CI=true`, as CI
services set it) `make test` installs what they need, so a skip there means the
tier did not run: the run must fail, not pass quietly (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Mapping

# path prefix (from the repository root, as in pytest node ids) -> tier
TIERS = {
    "tests/partitions/": "partition",
    "tests/clocks/": "clock",
    "tests/browser/": "browser",
    "tests/e2e/test_prometheus.py": "Prometheus",
    "tests/integration/test_readme.py": "README walk-through",  # needs curl
    "tests/integration/test_deploy.py": "deploy",  # systemd-analyze verify
}


def tier_of(nodeid: str) -> str | None:
    """The tier a test or test file belongs to (None: none that CI insists on)."""
    path = nodeid.split("::", 1)[0]
    return next((tier for prefix, tier in TIERS.items() if path.startswith(prefix)), None)


def skip_failure(nodeid: str, reason: str, env: Mapping[str, str]) -> str | None:
    """Why this skip fails the run (None: the skip stands): a skip in a tier under CI=true."""
    tier = tier_of(nodeid)
    if env.get("CI") != "true" or tier is None:
        return None
    return (
        f"CI=true: the {tier} tier must run, but {nodeid} was skipped ({reason}); "
        "install what it needs (make test does, as root, with apt-get)"
    )


def skip_reason(longrepr: object) -> str:
    """The reason of a skipped report (pytest keeps it as (path, line, reason))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)
