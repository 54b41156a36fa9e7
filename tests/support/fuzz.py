"""schemathesis against one node's /openapi.json, as a process, with a JSON report.

The settings (checks, deterministic generation, credentials hook) live in
tests/fuzz/schemathesis.toml, so a run by hand sends the same cases:

    BAZAR_CONFIG=<cluster.toml> .venv/bin/schemathesis \\
        --config-file tests/fuzz/schemathesis.toml run <node-url>/openapi.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cluster import ROOT, LocalCluster

SETTINGS = ROOT / "tests" / "fuzz" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@dataclass
class FuzzRun:
    node: str
    exit_code: int
    output: str
    # "POST /buy/{book_id}" -> {201: n, 400: n, ...}: every request the fuzzer sent;
    # status 0 counts requests that got no answer
    operations: dict[str, Counter] = field(default_factory=dict)
    documented: dict[str, dict] = field(default_factory=dict)  # from the node's document

    @property
    def cases(self) -> int:
        return sum(sum(c.values()) for c in self.operations.values())

    def statuses(self) -> Counter:
        return sum(self.operations.values(), Counter())


def fuzz_node(
    cluster: LocalCluster, node: str, report_dir: Path, max_examples: int | None = None
) -> FuzzRun:
    return fuzz_nodes(cluster, [node], report_dir, max_examples)[node]


def fuzz_nodes(
    cluster: LocalCluster, nodes: list[str], report_dir: Path, max_examples: int | None = None
) -> dict[str, FuzzRun]:
    """Fuzz several nodes at once, one schemathesis process each: on 2 cores the runs
    overlap their waits (a run is one client and one node at a time), and each node's
    findings are its own."""
    started = {node: _start(cluster, node, report_dir, max_examples) for node in nodes}
    return {node: _finish(cluster, node, *how) for node, how in started.items()}


def _start(cluster: LocalCluster, node: str, report_dir: Path, max_examples: int | None):
    events = report_dir / f"{node}.ndjson"
    command = [str(SCHEMATHESIS), "--config-file", str(SETTINGS), "run"]
    command += [cluster.url_of(node) + "/openapi.json", "--report", "ndjson"]
    command += ["--report-ndjson-path", str(events)]
    if max_examples:
        command += ["--max-examples", str(max_examples)]
    env = {**os.environ, "BAZAR_CONFIG": str(cluster.config_path), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(  # noqa: S603 - our own venv's schemathesis, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    return process, events


def _finish(cluster: LocalCluster, node: str, process: subprocess.Popen, events: Path) -> FuzzRun:
    try:
        output, _ = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    run = FuzzRun(node, process.returncode, output)
    run.documented = documented_operations(cluster, node)
    if events.exists():
        run.operations = _statuses_per_operation(events)
    return run


def documented_operations(cluster: LocalCluster, node: str) -> dict[str, dict]:
    """'METHOD /path' -> the operation, from the node's own OpenAPI document."""
    spec = cluster.api.http.get(cluster.url_of(node) + "/openapi.json", timeout=10).json()
    return {
        f"{method.upper()} {path}": operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }


def _statuses_per_operation(events: Path) -> dict[str, Counter]:
    """Status of every request sent, per operation, from the NDJSON event log."""
    result: dict[str, Counter] = defaultdict(Counter)
    for line in events.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished")
        if not scenario:
            continue
        recorder = scenario["recorder"]
        # By each request's own operation: a stateful scenario chains several.
        for case_id, interaction in recorder.get("interactions", {}).items():
            case = recorder["cases"][case_id]["value"]
            response = interaction.get("response")
            label = f"{case['method']} {case['path']}"
            result[label][response["status_code"] if response else 0] += 1
    return dict(result)


def table(runs: list[FuzzRun]) -> str:
    """Requests per documented operation and what came back (status 0: no answer);
    probes with methods a path does not have are summed in one row per node."""
    lines = [f"{'node':<11} {'operation':<36} {'sent':>5}  answers"]
    for run in runs:
        other = Counter()
        for operation, counts in sorted(run.operations.items()):
            if operation not in run.documented:
                other += counts
                continue
            lines.append(_row(run.node, operation, counts))
        lines.append(_row(run.node, "(other methods)", other))
    lines.append(f"{sum(r.cases for r in runs)} requests in all")
    return "\n".join(lines)


def _row(node: str, operation: str, counts: Counter) -> str:
    answers = " ".join(f"{code}:{n}" for code, n in sorted(counts.items()))
    return f"{node:<11} {operation:<36} {sum(counts.values()):>5}  {answers}"
