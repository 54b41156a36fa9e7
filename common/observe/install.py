"""Hooks that time, count and log every request, and the /metrics route."""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.observe.metrics import LiveMetrics, gauge, node_registry
from common.observe.recorder import Recorder
from common.observe.requestlog import (
    REQUEST_ID_ENVIRON,
    REQUEST_ID_HEADER,
    ROUTE_ENVIRON,
    TRACE_ENVIRON,
    RequestLog,
    Trace,
    accept_request_id,
    done_serving,
    log_path,
    serving,
)
from common.openapi import doc
from common.web import staff_off_loopback


def install(app: Flask) -> None:
    ctx = app.extensions["bazar"]
    live = LiveMetrics()
    live.add(lambda: _node_figures(ctx))
    app.extensions["bazar.metrics"] = live
    app.extensions["bazar.registry"] = node_registry(live)
    recorder = Recorder(RequestLog(log_path(ctx.cluster.data_dir, ctx.node.name), ctx.node.name))
    recorder.start()
    app.extensions["bazar.recorder"] = recorder
    app.wsgi_app = RequestHooks(app.wsgi_app, recorder)
    app.register_blueprint(_metrics_blueprint())


def inside(app: Flask, middleware) -> None:
    """Put a WSGI middleware between the request hooks and Flask: what it answers
    itself is still timed, counted and logged (it sets ROUTE_ENVIRON to its rule)."""
    hooks = app.wsgi_app
    hooks.wsgi_app = middleware(hooks.wsgi_app)


def live_metrics(app: Flask) -> LiveMetrics:
    return app.extensions["bazar.metrics"]


def _node_figures(ctx):
    offset = ctx.clocks.offset()
    if offset is not None:
        yield gauge(
            "bazar_clock_offset_seconds",
            "Seconds this node's wall clock is ahead of its peers' (median of recent samples).",
            offset,
        )
    yield gauge(
        "bazar_node_serving",
        "1 while this node answers requests (status 'up'), else 0.",
        1.0 if ctx.current_status() == "up" else 0.0,
        node=ctx.node.name,
        service=ctx.node.service,
    )


class RequestHooks:
    """WSGI middleware around the Flask app: a Trace for every request, the
    `X-Request-Id` answer header, and one flat record for the Recorder at the end.

    Middleware rather than Flask's before/after_request hooks: no context-local
    proxies and no hook dispatch. The record holds only strings and numbers, so
    nothing of the request (environ, request object) outlives it.
    """

    def __init__(self, wsgi_app, recorder: Recorder):
        self.wsgi_app = wsgi_app
        self.recorder = recorder

    def __call__(self, environ: dict, start_response):
        trace = environ[TRACE_ENVIRON] = Trace(accept_request_id(environ.get(REQUEST_ID_ENVIRON)))
        seen = []  # route and path, read while Flask's request object is there

        def start(status: str, headers: list, exc_info=None):
            headers.append((REQUEST_ID_HEADER, trace.request_id))
            request = environ.get("werkzeug.request")  # Flask drops it at the end
            url_rule = getattr(request, "url_rule", None)  # Flask's; None if not routed
            # Not routed by Flask: answered before it (see `inside`), or matched no rule.
            rule = url_rule.rule if url_rule is not None else environ.get(ROUTE_ENVIRON)
            path = request.path if request is not None else environ.get("PATH_INFO", "")
            seen[:] = (rule, path, status)
            return start_response(status, headers, exc_info)

        token = serving(trace)
        try:
            body = self.wsgi_app(environ, start)
        finally:
            done_serving(token)
        if seen:
            rule, path, status = seen
            self.recorder.add(
                (
                    trace.started,
                    trace.request_id,
                    trace.backends or None,
                    environ.get("REQUEST_METHOD", "?"),
                    rule,
                    path,
                    status,
                    time.perf_counter() - trace.clock,
                )
            )
        return body


def _metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @doc(responses={200: None}, errors=(401,), auth="none")
    @bp.get("/metrics")
    @staff_off_loopback
    def metrics():
        """Prometheus text format. From loopback as is; from elsewhere with the staff token."""
        current_app.extensions["bazar.recorder"].fold()  # every request finished so far
        body = generate_latest(current_app.extensions["bazar.registry"])
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return bp
