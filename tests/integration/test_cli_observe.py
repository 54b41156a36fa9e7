"""`bazar trace ID` and the foreground display of `bazar up`, on real nodes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from tests.support.cluster import ROOT, LocalCluster, wait_until


def test_trace_shows_a_buy_on_the_frontend_order_and_catalog_in_time_order(shared_cluster):
    c = shared_cluster
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    answer = c.api.send("POST", "/buy/2", headers={"X-Request-Id": request_id})
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Request-Id"] == request_id

    def traced():  # a node writes its lines up to a second after it answered (exit 1: none)
        found = c.bazar("trace", request_id, "--json", check=False)
        assert found.returncode in (0, 1), found.stderr
        lines = [json.loads(t) for t in found.stdout.splitlines()]
        services = {c.node(line["node"]).service for line in lines}
        return lines if {"frontend", "order", "catalog"} <= services else None

    lines = wait_until(traced, 10, "lines from the front-end, an order and a catalog server")
    assert all(line["request_id"] == request_id for line in lines)
    times = [line["time"] for line in lines]
    assert times == sorted(times)
    services = [c.node(line["node"]).service for line in lines]
    assert services[0] == "frontend"  # it started first: everything else is inside it
    assert services.index("order") < services.index("catalog")  # the order server asks
    front = lines[0]
    assert (front["method"], front["route"], front["path"], front["status"]) == (
        "POST",
        "/buy/{book_id}",
        "/buy/2",
        201,
    )
    assert any(backend.startswith("order-") for backend in front["backends"])

    text = c.bazar("trace", request_id).stdout.splitlines()
    assert len(text) == len(lines)
    for shown, line in zip(text, lines, strict=True):
        assert shown.startswith(f"{line['time']}  {line['node']}")
        assert f"{line['method']} " in shown and f" {line['status']} " in shown
        assert " ms" in shown
    assert "POST /buy/{book_id} /buy/2  201" in text[0] and "-> order-" in text[0]


def test_trace_of_an_unknown_id_is_exit_1_with_a_message(shared_cluster):
    result = shared_cluster.bazar("trace", "no-such-request-id", check=False)
    assert result.returncode == 1
    assert "no request 'no-such-request-id'" in result.stderr
    assert result.stdout == ""


class Foreground:
    """`bazar up` in the foreground, its output collected line by line."""

    def __init__(self, cluster: LocalCluster):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "common.ops.cli", "up", "--config", str(cluster.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 30.0) -> str:
        def found():
            return next((line for line in self.lines if re.search(pattern, line)), None)

        return wait_until(found, timeout, f"a line like {pattern!r} in:\n" + self.text())

    def text(self) -> str:
        return "\n".join(self.lines)

    def finish(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def abandon(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


STAMP = r"^\d\d:\d\d:\d\d  "


@pytest.fixture
def foreground(tmp_path):
    cluster = LocalCluster(tmp_path / "fg")
    shown = Foreground(cluster)
    try:
        shown.wait_line("^Running; node states follow", timeout=90)
        yield cluster, shown
    finally:
        shown.abandon()
        cluster.discard()  # whatever the test left running (it stopped the cluster itself)


def test_foreground_up_shows_states_a_killed_node_and_ends_after_down(foreground):
    cluster, shown = foreground
    for name in cluster.cluster.nodes:
        shown.wait_line(STAMP + rf"{name}\s+started$")
        shown.wait_line(STAMP + rf"{name}\s+healthy")
    shown.wait_line(STAMP + r"catalog-1\s+healthy \(primary\)")

    cluster.kill("order-2")
    shown.wait_line(STAMP + r"order-2\s+down$", timeout=10)
    with pytest.raises(subprocess.TimeoutExpired):  # one node down ends nothing
        shown.process.wait(timeout=1.5)

    cluster.down()
    assert shown.finish() == 0, shown.text()
    assert re.search(STAMP + "every node has stopped; the display ends$", shown.lines[-1])
    assert all(cluster.state(name) == "down" for name in cluster.cluster.nodes)


def test_ctrl_c_still_stops_every_node(foreground):
    cluster, shown = foreground
    shown.process.send_signal(signal.SIGINT)
    assert shown.finish() == 0, shown.text()
    assert "stopping..." in shown.text()
    assert all(f"stopped {name}" in shown.text() for name in cluster.cluster.nodes)
    assert all(cluster.state(name) == "down" for name in cluster.cluster.nodes)
