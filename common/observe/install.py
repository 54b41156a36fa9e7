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
    Trace,
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
    g.trace = Trace(accept_request_id(request.headers.get(REQUEST_ID_HEADER)))


def _finish(log: RequestLog, response: Response) -> Response:
    trace: Trace | None = g.get("trace")
    if trace is None:  # failed before our first hook ran
        return response
    elapsed = time.perf_counter() - trace.clock
    req = request._get_current_object()  # one proxy lookup, not one per attribute
    rule = req.url_rule
    key = (rule.rule if rule else UNMATCHED, req.method, response.status_code)
    count, timing = _children.get(key) or _new_children(key)
    count.inc()
    timing.observe(elapsed)
    response.headers[REQUEST_ID_HEADER] = trace.request_id
    log.write(trace, req.method, _route_label(key[0]), req.path, response.status_code, elapsed)
    return response


# (rule, method, status) -> that label set's counter and histogram: labels() takes a
# lock and builds a tuple on every call, which is most of what counting costs.
_children: dict[tuple, tuple] = {}


def _new_children(key: tuple) -> tuple:
    labels = (_route_label(key[0]), key[1], str(key[2]))
    pair = (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
    _children[key] = pair
    return pair


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
