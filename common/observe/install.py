"""Hooks that time, count and log every request, and the /metrics route."""

from __future__ import annotations

import ipaddress
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.auth import check_bearer
from common.observe.metrics import LiveMetrics, gauge, node_registry
from common.observe.recorder import Recorder
from common.observe.requestlog import (
    REQUEST_ID_HEADER,
    RequestLog,
    Trace,
    accept_request_id,
    log_path,
)
from common.openapi import doc

REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")  # WSGI's name


def install(app: Flask) -> None:
    ctx = app.extensions["bazar"]
    live = LiveMetrics()
    live.add(lambda: _node_figures(ctx))
    app.extensions["bazar.metrics"] = live
    app.extensions["bazar.registry"] = node_registry(live)
    recorder = Recorder(RequestLog(log_path(ctx.cluster.data_dir, ctx.node.name), ctx.node.name))
    recorder.start()
    app.extensions["bazar.recorder"] = recorder
    app.before_request(_begin)
    app.after_request(lambda response: _finish(recorder, response))
    app.register_blueprint(_metrics_blueprint())


def live_metrics(app: Flask) -> LiveMetrics:
    return app.extensions["bazar.metrics"]


def _node_figures(ctx):
    yield gauge(
        "bazar_node_serving",
        "1 while this node answers requests (status 'up'), else 0.",
        1.0 if ctx.current_status() == "up" else 0.0,
        node=ctx.node.name,
        service=ctx.node.service,
    )


def _begin() -> None:
    g.trace = Trace(accept_request_id(request.environ.get(REQUEST_ID_ENVIRON)))


def _finish(recorder: Recorder, response: Response) -> Response:
    trace: Trace | None = g.get("trace")
    if trace is None:  # failed before our first hook ran
        return response
    elapsed = time.perf_counter() - trace.clock
    req = request._get_current_object()  # one proxy lookup, not one per attribute
    rule = req.url_rule.rule if req.url_rule else None
    response.headers[REQUEST_ID_HEADER] = trace.request_id
    recorder.add((trace, req.method, rule, req.path, response.status_code, elapsed))
    return response


def _metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @doc(responses={200: None}, errors=(401,), auth="none")
    @bp.get("/metrics")
    def metrics():
        """Prometheus text format. From loopback as is; from elsewhere with the staff token."""
        if not _from_loopback():
            check_bearer(request.headers.get("Authorization"), current_app.config["STAFF_TOKEN"])
        current_app.extensions["bazar.recorder"].fold()  # every request finished so far
        body = generate_latest(current_app.extensions["bazar.registry"])
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return bp


def _from_loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
