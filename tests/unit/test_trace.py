"""common/ops/trace.py: one request's lines from every node's request log, current and
rotated, merged in time order; torn lines and other ids left out."""

import json

import pytest

from common.observe.requestlog import log_path
from common.ops import trace
from tests.support.configs import config_text, load_config


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    return load_config(tmp_path, monkeypatch, config_text())


def line(node, second, request_id="req-1", **extra):
    fields = {
        "time": f"2026-01-02T03:04:{second:09.6f}Z",
        "node": node,
        "request_id": request_id,
        "method": "POST",
        "route": "/buy/{book_id}",
        "path": "/buy/1",
        "status": 201,
        "duration_ms": 12.345,
        "backends": [],
        **extra,
    }
    return json.dumps(fields, separators=(",", ":"))


def write(cluster, node, suffix, *lines):
    path = log_path(cluster.data_dir, node)
    path = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(text + "\n" for text in lines))


def test_lines_of_one_id_from_current_and_rotated_files_in_time_order(cluster):
    write(cluster, "frontend-1", "", line("frontend-1", 5.0, backends=["order-1 201"]))
    write(cluster, "order-1", ".1", line("order-1", 5.1), line("order-1", 9.0, "req-2"))
    write(cluster, "catalog-1", ".2", line("catalog-1", 5.2))
    write(cluster, "catalog-1", "", line("catalog-1", 5.15, route="/verify", path="/verify"))
    found = trace.find(cluster, "req-1")
    assert [(x.fields["node"], x.fields["time"][-10:]) for x in found] == [
        ("frontend-1", "05.000000Z"),
        ("order-1", "05.100000Z"),
        ("catalog-1", "05.150000Z"),
        ("catalog-1", "05.200000Z"),
    ]
    assert found[0].raw == line("frontend-1", 5.0, backends=["order-1 201"])


def test_an_id_inside_another_id_torn_lines_and_strangers_are_left_out(cluster):
    write(
        cluster,
        "order-1",
        "",
        line("order-1", 1.0, "req-10"),
        '{"time":"2026-01-02T03:04:02.000000Z","node":"order-1","request_id":"req-1',  # torn
        "req-1 is not json",
        line("order-1", 3.0, "req-1"),
    )
    write(cluster, "stranger-9", "", line("stranger-9", 0.5))  # not in the config
    assert [x.fields["time"][-10:] for x in trace.find(cluster, "req-1")] == ["03.000000Z"]
    assert trace.find(cluster, "nobody") == []


def test_no_logs_at_all_is_no_lines(cluster):
    assert trace.log_files(cluster) == []
    assert trace.find(cluster, "req-1") == []


def test_describe_shows_time_node_method_route_path_status_duration_backends(cluster):
    text = trace.describe(
        trace.Line(json.loads(line("frontend-1", 5.0, backends=["order-1 201"])), "")
    )
    assert text == (
        "2026-01-02T03:04:05.000000Z  frontend-1   POST /buy/{book_id} /buy/1  201  12.3 ms"
        "  -> order-1 201"
    )
    plain = trace.Line(
        {
            "time": "t",
            "node": "n",
            "method": "GET",
            "route": "/health",
            "path": "/health",
            "status": 200,
            "duration_ms": 1,
        },
        "",
    )
    assert trace.describe(plain) == "t  n            GET /health  200  1.0 ms"
