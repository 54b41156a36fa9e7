"""/metrics access, request ids and the request log line, on an in-process front-end app."""

from __future__ import annotations

import json
import os

import pytest

from common.observe.install import live_metrics
from common.observe.requestlog import accept_request_id, iso_time, log_path, new_request_id
from tests.support.cluster import wait_until


@pytest.fixture
def app(frontend_app):
    return frontend_app


def metrics(app, remote: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.1", "::1"])
def test_metrics_are_open_from_loopback(app, remote):
    response = metrics(app, remote)
    assert response.status_code == 200
    assert b"bazar_cache_hits_total" in response.data


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_metrics_from_elsewhere_need_the_staff_token(app, token):
    response = metrics(app, "198.18.0.9", token)
    assert response.status_code == 401
    assert "message" in response.get_json()
    assert b"bazar_" not in response.data


def test_metrics_from_elsewhere_with_the_staff_token(app):
    token = app.config["test.cluster"].staff_token
    assert metrics(app, "198.18.0.9", token).status_code == 200


def test_requests_are_counted_by_route_template_and_unknown_paths_share_one_label(app):
    client = app.test_client()
    client.get("/no/such/path")
    client.get("/another/missing/path")
    text = metrics(app, "127.0.0.1").get_data(as_text=True)
    line = next(
        s
        for s in text.splitlines()
        if s.startswith("bazar_http_requests_total{") and 'route="unmatched"' in s
    )
    assert float(line.split()[-1]) >= 2
    assert "/no/such/path" not in text


def test_each_request_writes_one_json_line_with_its_id(app):
    client = app.test_client()
    response = client.get("/health", headers={"X-Request-Id": "unit-42"})
    assert response.headers["X-Request-Id"] == "unit-42"
    path = log_path(app.config["test.cluster"].data_dir, "frontend-1")

    def logged():
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        return next((x for x in lines if x["request_id"] == "unit-42"), None)

    line = wait_until(logged, timeout=3, what="the line (written within 0.2 s)")
    assert line["node"] == "frontend-1" and line["route"] == "/health"
    assert line["status"] == 200 and line["duration_ms"] >= 0 and line["backends"] == []


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("abc-123", True),
        ("trace:9f/req@host=1", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        (None, False),
        ("-starts-with-dash", False),
        ("new\nline", False),
        ('{"json":1}', False),
    ],
)
def test_request_ids_a_client_may_choose(sent, kept):
    given = accept_request_id(sent)
    assert (given == sent) is kept
    if not kept:
        assert len(given) == 32


def test_log_times_are_utc_with_microseconds():
    assert iso_time(0.25) == "1970-01-01T00:00:00.250000Z"
    assert iso_time(1795449600.000001) == "2026-11-23T16:00:00.000001Z"


def test_new_request_ids_are_distinct_here_and_in_a_forked_child():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a gunicorn worker is such a child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    assert from_child[:16] != next(iter(ids))[:16]


@pytest.mark.parametrize("path", ["/no/1", "/no/a%20b", '/x"y', "/back\\slash", "/é"])
def test_log_lines_are_json_whatever_the_path(app, path):
    client = app.test_client()
    client.get(path, headers={"X-Request-Id": "odd-path"})
    app.extensions["bazar.recorder"].fold()
    log = log_path(app.config["test.cluster"].data_dir, "frontend-1")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert any(x["request_id"] == "odd-path" for x in lines)


def test_a_failing_figure_is_left_out_and_counted_not_a_500(app):
    def broken():
        raise ValueError("odd data")
        yield  # a generator, as sources are

    live_metrics(app).add(broken)
    response = metrics(app, "127.0.0.1")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "bazar_cache_hits_total" in text
    assert "bazar_metrics_source_errors_total 1.0" in text


def test_observe_all_counts_like_observe_one_by_one():
    from prometheus_client import CollectorRegistry, Histogram

    from common.observe.recorder import observe_all

    values = [0.0, 0.001, 0.005, 0.0051, 0.3, 2.5, 10.0, 99.0, 0.005]
    one, many = (
        Histogram("t", "t", registry=CollectorRegistry(), buckets=(0.005, 0.1, 2.5, 10))
        for _ in range(2)
    )
    for v in values:
        one.observe(v)
    observe_all(many, values)
    counted, summed = ({}, {}), ({}, {})
    for side, h in enumerate((one, many)):
        for s in h.collect()[0].samples:
            if s.name == "t_sum":
                summed[side]["sum"] = s.value
            elif s.name != "t_created":
                counted[side][(s.name, s.labels.get("le"))] = s.value
    assert counted[0] == counted[1] and counted[0][("t_count", None)] == len(values)
    assert summed[1]["sum"] == pytest.approx(summed[0]["sum"])


@pytest.mark.parametrize("path", ["/cluster", "/cluster.json"])
def test_the_cluster_view_is_open_from_loopback_and_staff_only_from_elsewhere(app, path):
    token = app.config["test.cluster"].staff_token
    client = app.test_client()
    assert client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    refused = client.get(path, environ_base={"REMOTE_ADDR": "198.18.0.9"})
    assert refused.status_code == 401
    if path == "/cluster":  # a browser: the sign-in form (tests/unit/test_cluster_sign_in.py)
        assert "/cluster/sign-in" in refused.get_data(as_text=True)
    else:
        assert "staff token" in refused.get_json()["message"]
    with_token = client.get(
        path,
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": "::ffff:198.18.0.9"},
    )
    assert with_token.status_code == 200
