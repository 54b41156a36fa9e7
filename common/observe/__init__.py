"""Seeing the cluster: Prometheus metrics, request ids and one JSON log line per request.

`install.install(app)` (called by every node's factory) adds both to a node;
services add their domain figures with `install.live_metrics(app).add(...)`.
Nothing is imported here: prometheus_client must not be loaded before
`common.server` has set PROMETHEUS_MULTIPROC_DIR.
"""
