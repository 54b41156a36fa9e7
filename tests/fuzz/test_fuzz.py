"""schemathesis against every kind of node's OpenAPI document, with valid credentials.

Each node gets the cases of tests/fuzz/schemathesis.toml (deterministic,
15 per operation and phase; the four nodes are fuzzed at once): schema-valid
and schema-violating requests, every check on (no 5xx, status codes, content
types, headers and bodies as documented, invalid data refused, valid data
accepted unless the answer is a business one, credentials enforced). The
fuzzer's own auth probes take the credentials away, so every secured
operation must also have answered 401.

The cluster is this module's own: signed fuzzing writes into it.
"""

from __future__ import annotations

import pytest

from tests.support.cluster import LocalCluster
from tests.support.fuzz import FuzzRun, fuzz_nodes, table
from tests.support.shop import Shop

# One node of each kind (catalog-1 is the primary, so its write handlers run).
# scripts/fuzz_run.py also takes the backups, whose writes answer 421.
NODES = ["frontend-1", "catalog-1", "order-1", "recovery-1"]
RUNS: dict[str, FuzzRun] = {}


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory):
    cluster = LocalCluster(tmp_path_factory.mktemp("fuzz")).up()
    yield cluster
    print("\n" + table([RUNS[n] for n in NODES if n in RUNS]))
    cluster.discard()


@pytest.fixture(scope="module")
def fuzzed(fuzz_cluster, tmp_path_factory) -> dict[str, FuzzRun]:
    RUNS.update(fuzz_nodes(fuzz_cluster, NODES, tmp_path_factory.mktemp("fuzz-reports")))
    return RUNS


@pytest.mark.parametrize("node", NODES)
def test_fuzzer_finds_nothing(fuzzed, node):
    run = fuzzed[node]
    assert run.exit_code == 0, run.output[-6000:]
    documented = run.documented
    # Every operation was fuzzed, but for the document schemathesis was loaded from.
    assert set(documented) - {"GET /openapi.json"} <= set(run.operations)
    statuses = run.statuses()
    assert not [code for code in statuses if code >= 500 or code == 0], statuses
    for label, answered in run.operations.items():
        operation = documented.get(label)
        if label.startswith("OPTIONS "):  # Flask's own: 200 with the Allow header
            assert set(answered) == {200}, f"{label}: {answered}"
        elif operation is None:  # a method the path does not have
            assert set(answered) == {405}, f"{label}: {answered}"
        elif "security" in operation:
            assert answered[401] > 0, f"{label}: credentials never taken away"
            assert set(answered) - {401}, f"{label}: never got past the credentials"


def test_every_node_is_still_up_and_serving(fuzz_cluster):
    for node in fuzz_cluster.cluster.nodes:
        assert fuzz_cluster.state(node) == "up", node
    # The fuzzer may have withdrawn book 2: putting it back is a write through it all.
    assert Shop(fuzz_cluster.api).restore(2).status_code == 200
    assert fuzz_cluster.api.lookup(2).status_code == 200
