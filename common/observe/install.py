"""Hooks that time, count and log every request, and the /metrics route."""

from __future__ import annotations

import ipaddress
import re
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.auth import check_bearer
from common.observe.metrics import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    LiveMetrics,
    gauge,
    node_registry,
)
from common.observe.requestlog import (
    REQUEST_ID_HEADER,
    RequestLog,
    accept_request_id,
    log_path,
)
from common.openapi import doc

UNMATCHED = "unmatched"  # a path no route serves: one label, not one per path tried
_ROUTE_LABELS: dict[str, str] = {}  # Flask rule -> label, computed once per rule


def install(app: Flask) -> None:
    ctx = app.extensions["bazar"]
    live = LiveMetrics()
    live.add(lambda: _node_figures(ctx))
    app.extensions["bazar.metrics"] = live
    app.extensions["bazar.registry"] = node_registry(live)
    log = RequestLog(log_path(ctx.cluster.data_dir, ctx.node.name), ctx.node.name)
    app.before_request(_begin)
    app.after_request(lambda response: _finish(log, response))
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
    g.started = time.time()
    g.clock = time.perf_counter()
    g.request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.backends = []


def _finish(log: RequestLog, response: Response) -> Response:
    if "clock" not in g:  # failed before our first hook ran
        return response
    elapsed = time.perf_counter() - g.clock
    route = _route_label(request.url_rule.rule) if request.url_rule else UNMATCHED
    status = str(response.status_code)
    HTTP_REQUESTS.labels(route, request.method, status).inc()
    HTTP_LATENCY.labels(route, request.method, status).observe(elapsed)
    response.headers[REQUEST_ID_HEADER] = g.request_id
    log.write(
        g.started,
        {
            "request_id": g.request_id,
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 3),
            "backends": g.backends,
        },
    )
    return response


def _route_label(rule: str) -> str:
    """'/buy/<int(max=...):book_id>' -> '/buy/{book_id}', as in the OpenAPI document."""
    label = _ROUTE_LABELS.get(rule)
    if label is None:
        label = _ROUTE_LABELS[rule] = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
    return label


def _metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @doc(responses={200: None}, errors=(401,), auth="none")
    @bp.get("/metrics")
    def metrics():
        """Prometheus text format. From loopback as is; from elsewhere with the staff token."""
        if not _from_loopback():
            check_bearer(request.headers.get("Authorization"), current_app.config["STAFF_TOKEN"])
        body = generate_latest(current_app.extensions["bazar.registry"])
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return bp


def _from_loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
