"""Flask-side plumbing shared by every node: JSON errors, strict bodies, auth guards.

Routes stay short: they parse with `load_body`, call a service function and
serialize. Domain errors are `ApiError`s; this module is the one place that
turns any error into `{"message": ...}` with the right status.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import IntegerConverter

from common import fastload
from common.auth import AuthError, SignatureVerifier, check_bearer, signed_target
from common.fields import SQLITE_MAX_INT
from common.webkit import wire

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a message for the client."""

    def __init__(self, code: int, message: str, headers: dict | None = None, **extra: Any):
        super().__init__(message)
        self.status = code
        self.message = message
        self.headers = headers or {}  # e.g. Retry-After
        self.extra = extra

    def answer(self) -> dict:
        """This error as one answer of a batch: the error body with its `code`."""
        return {"code": self.status, "message": self.message, **self.extra}


def error_response(code: int, message: str, **extra: Any):
    """`extra` may hold any field, `status` (a replica's state) included."""
    response = jsonify({"message": message, **extra})
    response.status_code = code
    return response


def as_api_error(e: ApiError | ValidationError | AuthError) -> ApiError:
    """A refused body (400) or credential (401) as the ApiError the client gets."""
    if isinstance(e, ValidationError):
        return ApiError(400, validation_message(e.messages))
    if isinstance(e, AuthError):
        return ApiError(401, str(e), {"WWW-Authenticate": 'Bearer realm="bazar"'})
    return e


def api_error_response(e: ApiError):
    """An ApiError as JSON with its status and headers (inside an app context)."""
    response = error_response(e.status, e.message, **e.extra)
    response.headers.update(e.headers)
    return response


def install_error_handlers(app: Flask) -> None:
    """Every error leaves as JSON; nothing leaks a traceback or an HTML page."""

    @app.errorhandler(ApiError)
    @app.errorhandler(ValidationError)
    @app.errorhandler(AuthError)
    def _api_error(e: Exception):
        return api_error_response(as_api_error(e))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        response = e.get_response()
        body = error_response(e.code or 500, e.description or e.name)
        for header in ("Allow", "Retry-After"):
            if header in response.headers:
                body.headers[header] = response.headers[header]
        return body

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")


def validation_message(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested messages into 'field: why; other: why'."""
    if isinstance(messages, dict):
        parts = [
            validation_message(v, f"{prefix}{k}." if k != "_schema" else prefix)
            for k, v in messages.items()
        ]
        return "; ".join(parts)
    if isinstance(messages, list):
        text = " ".join(str(m) for m in messages)
        return f"{prefix.rstrip('.')}: {text}" if prefix else text
    return f"{prefix.rstrip('.')}: {messages}" if prefix else str(messages)


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_json(raw: bytes, signed: bool = False) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys, bounded nesting. A `signed`
    body (another node's, encoded from a dict) cannot repeat a key: it is read by the
    nodes' own codec (common.webkit.wire), without that check, a Python call per
    object that was a third of the parse of a push."""
    try:
        if signed:
            return wire.loads(raw)  # refuses NaN and Infinity too
        return json.loads(raw, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ApiError(400, "body: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body: not valid JSON ({e})") from None


def load_body(shape: type[Schema], *, optional: bool = False) -> dict:
    """Parse and validate the request body with a marshmallow schema class.

    A public body with a field the schema does not know is a 400. An internal one (a
    signed call from another node: `protect_internal`) drops such fields instead, at
    every depth: a node of the next version may send a field this one does not know
    yet, and a rolling upgrade has both versions talking (docs/upgrading.md)."""
    signed = bool(g.get(INTERNAL_CALL))
    schema = tolerant(shape) if signed else public_schema(shape)
    return parse_body(schema, request.get_data(cache=True), request.mimetype, optional, signed)


def parse_body(
    schema: Schema, raw: bytes, mimetype: str, optional: bool = False, signed: bool = False
) -> dict:
    """`load_body` of a body already read (`mimetype`: its Content-Type, lower case,
    without parameters; `signed`: a verified internal call's) for a request answered
    before Flask (frontend/buys.py, common/webkit/early.py)."""
    if not raw.strip():
        if optional:
            return schema.load({})
        raise ApiError(400, "body: a JSON object is required")
    if mimetype != "application/json":
        raise ApiError(415, "body: Content-Type must be application/json")
    data = parse_json(raw, signed)
    if not isinstance(data, dict):
        raise ApiError(400, "body: must be a JSON object")
    return fastload.load(schema, data)


@functools.cache
def public_schema(shape: type[Schema]) -> Schema:
    """One instance per schema class: building one (its nested fields are deep-copied)
    cost a tenth of a /sync request's CPU. Loading keeps no state in the instance."""
    return shape()


INTERNAL_CALL = "bazar_internal_call"  # flask.g: this request carries a valid signature


@functools.cache
def tolerant(shape: type[Schema]) -> Schema:
    """One instance of `shape` (kept, like `_instance`) that excludes unknown fields, its
    nested schemas too (a Meta `unknown` reaches only its own level): for what other
    nodes send."""
    schema = shape(unknown=EXCLUDE)
    _exclude_nested(schema.fields.values())
    return schema


def _exclude_nested(found) -> None:
    for field in found:
        if isinstance(field, fields.Nested):
            field.unknown = EXCLUDE  # passed down when the nested schema loads
            _exclude_nested(field.schema.fields.values())
        elif isinstance(field, fields.List):
            _exclude_nested([field.inner])
        elif isinstance(field, fields.Tuple):
            _exclude_nested(field.tuple_fields)
        elif isinstance(field, fields.Dict) and field.value_field is not None:
            _exclude_nested([field.value_field])


@dataclass(frozen=True)
class QueryInt:
    """An optional integer query parameter with bounds, read and documented from one place."""

    name: str
    default: int
    low: int
    high: int

    @property
    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}

    def read(self) -> int:
        text = request.args.get(self.name)
        if text is None:
            return self.default
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
        if re.fullmatch(r"[0-9]{1,19}", text) and self.low <= int(text) <= self.high:
            return int(text)
        raise ApiError(400, f"{self.name}: must be an integer from {self.low} to {self.high}")


@dataclass(frozen=True)
class QueryChoice:
    """An optional query parameter that takes one of a few words."""

    name: str
    choices: tuple[str, ...]

    @property
    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices), "default": self.choices[0]}

    def read(self) -> str:
        text = request.args.get(self.name, self.choices[0])
        if text not in self.choices:
            raise ApiError(400, f"{self.name}: must be one of {', '.join(self.choices)}")
        return text


DATE_SCHEMA = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def query_date(name: str) -> date | None:
    """An optional ISO date (YYYY-MM-DD) query parameter."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ApiError(400, f"{name}: must be a date like 2026-11-23 (YYYY-MM-DD, UTC)")


class RowIdConverter(IntegerConverter):
    """`<id:book_id>`: a row id, 0 to 2^63 - 1; a larger one is a 404 outright.

    (werkzeug's `int(max=...)` makes such a path match no rule, and when two
    rules share the path, one per method, it then answers 405 for one of them.)
    """

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > SQLITE_MAX_INT:
            raise NotFound(f"no such id: {value} is beyond 2^63 - 1")
        return number


# Signed internal bodies may be large: a new primary's base holds every book and
# every order decision. Public bodies keep `max_body` (64 KiB by default).
INTERNAL_MAX_BODY = 64 * 1024 * 1024


def protect_internal(blueprint: Blueprint) -> None:
    """Every route of `blueprint` needs a valid cluster signature (design §6)."""

    @blueprint.before_request
    def _verify():
        request.max_content_length = INTERNAL_MAX_BODY
        verifier: SignatureVerifier = current_app.extensions["bazar.verifier"]
        target = signed_target(request.path, request.query_string.decode("latin-1"))
        verifier.verify(request.method, target, request.headers, request.get_data(cache=True))
        setattr(g, INTERNAL_CALL, True)  # its bodies may carry fields of a newer version


def staff_off_loopback(view: Callable) -> Callable:
    """Open from loopback; from anywhere else the staff bearer token (/metrics; staff's
    own routes and the front-end's /cluster check roles in frontend.identity)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not from_loopback():
            check_bearer(request.headers.get("Authorization"), current_app.config["STAFF_TOKEN"])
        return view(*args, **kwargs)

    return wrapper


def from_loopback() -> bool:
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
