"""OpenAPI 3 documents generated from each node's routes and marshmallow schemas.

A view declares what it takes and returns with `@doc(...)`; the document is
built from the Flask URL map, the views' docstrings and those schemas (via
apispec's marshmallow plugin), so it cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify, make_response, render_template
from marshmallow import Schema, fields

from common.apidocs import page_model

ERROR_TEXT = {
    400: "bad request: the message names the field and why",
    401: "missing or wrong credentials",
    403: "the staff role is not enough: the message names the role needed",
    404: "not found",
    405: "method not allowed",
    409: "conflict: an epoch older than the newest this node has seen (a deposed "
    "primary), or a staff name already taken",
    410: "out of stock",
    413: "body too large",
    415: "body is not JSON (or not the media type the route takes)",
    421: "not the primary: send writes to the primary",
    422: "idempotency key (or staff write id) reused for a different request",
    429: "too many wrong passwords: wait Retry-After seconds",
    503: "no replica could answer, or this replica is recovering",
}
CONVERTER_TYPES = {"int": "integer", "id": "integer", "path": "string", "default": "string"}
# Examples of path parameters, by name: they show up on the docs page and give
# a fuzzer one request that reaches a real resource.
PATH_EXAMPLES = {
    "book_id": 1,
    "topic": "distributed systems",
    "target": "catalog-2",
    "name": "ann",
}


class ErrorSchema(Schema):
    message = fields.String(required=True, metadata={"description": "what went wrong"})
    primary = fields.String(metadata={"description": "421: the catalog that takes writes"})
    status = fields.String(metadata={"description": "503: this replica's state"})
    books = fields.List(
        fields.Integer(), metadata={"description": "404/410 of an order: the books meant"}
    )
    order_id = fields.String(metadata={"description": "the order this answer is about"})
    epoch = fields.Integer(metadata={"description": "409/503: the newest lease epoch in play"})
    data_epoch = fields.Integer(metadata={"description": "503: epoch of this replica's base"})


def doc(
    body: type[Schema] | dict | None = None,
    responses: dict[int, object] | None = None,
    errors: tuple[int, ...] = (),
    query: dict[str, str] | None = None,
    auth: str | None = None,
    body_required: bool = True,
    headers: dict[str, str | dict] | None = None,
) -> Callable:
    """Attach OpenAPI facts to a view.

    `auth` is "staff", "cluster" or "none"; left out, the node's default applies
    (signed "cluster" calls on internal nodes, open on the front-end). `body`
    (like a response) may also be content types of its own: {"text/csv": {...}}.
    """

    def attach(view: Callable) -> Callable:
        view.openapi = {
            "body": body,
            "responses": responses or {200: None},
            "errors": errors,
            "query": query or {},
            "header": headers or {},
            "auth": auth,
            "body_required": body_required,
        }
        return view

    return attach


OPEN = {
    "body": None,
    "responses": {200: None},
    "errors": (),
    "query": {},
    "header": {},
    "auth": "none",
}
OPEN_ENDPOINTS = ("openapi.openapi_json", "openapi.docs")
# The docs page loads nothing and runs nothing: inline styles only.
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def openapi_blueprint(title: str, default_auth: str) -> Blueprint:
    """Serve /openapi.json and the /docs page, built once from the app's routes."""
    bp = Blueprint("openapi", __name__, template_folder="templates")

    def built(key: str, build: Callable[[], object]):
        """Routes do not change while a node runs: build each answer once."""
        if key not in current_app.extensions:
            current_app.extensions[key] = build()
        return current_app.extensions[key]

    def spec() -> dict:
        return built("openapi.spec", lambda: build_spec(current_app, title, default_auth))

    @bp.get("/openapi.json")
    def openapi_json():
        """This node's OpenAPI 3 document."""
        return jsonify(spec())

    @bp.get("/docs")
    def docs():
        """This node's API as a page to read (HTML, from the same document)."""
        page = built("openapi.docs", lambda: render_template("docs.html", m=page_model(spec())))
        response = make_response(page)
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    return bp


def build_spec(app: Flask, title: str, default_auth: str) -> dict:
    marshmallow = MarshmallowPlugin()
    spec = APISpec(title=title, version="1.0.0", openapi_version="3.0.3", plugins=[marshmallow])
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("staff", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "cluster",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-Bazar-Signature",
            "description": "HMAC-SHA256 over method, path, X-Bazar-Timestamp, X-Bazar-Nonce "
            "and the body hash, keyed with the cluster secret",
        },
    )
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        facts = OPEN if rule.endpoint in OPEN_ENDPOINTS else getattr(view, "openapi", None)
        if facts is None:
            continue
        path, params = _path_and_params(rule.rule)
        _register_body_extras(spec, marshmallow, facts["body"])
        operations = {
            m.lower(): _operation(view, facts, params, default_auth)
            for m in sorted(rule.methods - {"HEAD", "OPTIONS"})
        }
        spec.path(path=path, operations=operations)
    return _tolerant_internal_bodies(spec.to_dict())


def _tolerant_internal_bodies(document: dict) -> dict:
    """Signed calls ignore fields they do not know (a newer node may send more:
    common.web.tolerant, docs/upgrading.md), so their body schemas allow more properties;
    a schema that a public route takes too stays strict, as that route is."""
    internal, public = set(), set()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            signed = {"cluster": []} in operation.get("security", [])
            body = operation.get("requestBody", {}).get("content", {})
            (internal if signed else public).update(_refs(body, document))
    for name in internal - public:
        _allow_more(document["components"]["schemas"][name])
    return document


def _refs(node, document: dict, found: set | None = None) -> set:
    """Names of the components `node` refers to, and those they refer to in turn."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if (
            ref.startswith("#/components/schemas/")
            and (name := ref.rpartition("/")[2]) not in found
        ):
            found.add(name)
            _refs(document["components"]["schemas"].get(name, {}), document, found)
        for value in node.values():
            _refs(value, document, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, document, found)
    return found


def _allow_more(schema: dict) -> None:
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]


def _register_body_extras(
    spec: APISpec, marshmallow: MarshmallowPlugin, body: type[Schema] | None
) -> None:
    """A body schema's `openapi_extra` (rules marshmallow fields cannot state, such as
    minProperties) goes into its component, registered before anything refers to it."""
    extra = getattr(body, "openapi_extra", None)
    if not extra:
        return
    name = marshmallow.schema_name_resolver(body)  # the name references will use
    if name not in spec.components.schemas:
        spec.components.schema(name, component=extra, schema=body)


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    """Flask '/lookup/<int(max=..):book_id>' -> OpenAPI '/lookup/{book_id}' and its parameter."""
    params = []
    for converter, name in re.findall(r"<(?:([a-z]+)(?:\([^)]*\))?:)?([^<>]+)>", rule):
        kind = CONVERTER_TYPES.get(converter or "default", "string")
        schema = {"type": kind}
        if kind == "integer":
            schema.update({"minimum": 0, "maximum": 2**63 - 1})
        param = {"in": "path", "name": name, "required": True, "schema": schema}
        if name in PATH_EXAMPLES:
            param["example"] = PATH_EXAMPLES[name]
        params.append(param)
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), params


def _without_required(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "required"}


def _operation(view, facts: dict, params: list[dict], default_auth: str) -> dict:
    summary = (view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else ""
    query = [
        {
            "in": where,
            "name": k,
            # {"required": True, ...}: a parameter the route cannot do without
            "required": isinstance(v, dict) and v.get("required") is True,
            "schema": _without_required(v) if isinstance(v, dict) else {"type": v},
        }
        for where in ("query", "header")
        for k, v in facts[where].items()
    ]
    operation = {"summary": summary, "parameters": params + query, "responses": {}}
    for status, schema in facts["responses"].items():
        response = {"description": "success" if status < 400 else ERROR_TEXT[status]}
        if isinstance(schema, dict):  # content types of their own: {"text/csv": {...}}
            response["content"] = schema
        elif schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(status)] = response
    errors = set(facts["errors"])
    if any(p["schema"]["type"] == "integer" for p in params):
        errors.add(404)  # an id beyond 64 bits matches no route
    if facts["body"] is not None:
        body = facts["body"]  # a schema, or content types of their own like responses
        content = body if isinstance(body, dict) else {"application/json": {"schema": body}}
        operation["requestBody"] = {"required": facts["body_required"], "content": content}
        errors |= {400, 413, 415}
    auth = facts["auth"] or default_auth
    if auth != "none":
        operation["security"] = [{auth: []}]
        errors.add(401)
    for status in sorted(errors - set(facts["responses"])):  # a response given stands
        operation["responses"][str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": "Error"}},
        }
    return operation
