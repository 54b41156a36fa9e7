"""A fast path for marshmallow loads of valid bodies: each schema compiled once to checks.

Marshmallow spends about 5 us a field: a push of five order entries took 360 us to
load, and a buy's entry is loaded at four nodes (the order server and the catalog
take the batch, the peer order server and the backup catalog the push). A schema
is compiled once into plain checks of the field kinds our schemas use (exact JSON
types, as common.fields wants them) and calls of the fields' own validators. A body
that passes every check is returned as marshmallow returns it; a check that fails,
or a schema with a field kind, hook or option the compiler does not know, goes to
marshmallow itself, so every error (message and status) is still marshmallow's.
tests/unit/test_fastload.py holds both to the same answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields
from marshmallow.utils import missing

from common.fields import SQLITE_MAX_INT, Label, StrictBoolean, StrictInteger, StrictNumber

Check = Callable[[Any], Any]  # a value -> what marshmallow would load, or raises _Invalid
_COMPILED = "_bazar_fast_check"  # where a schema instance keeps its compiled check


class _Invalid(Exception):
    """The fast path cannot vouch for this body: marshmallow decides."""


class _Unsupported(Exception):
    """A schema the compiler does not know how to check: always marshmallow."""


def load(schema: Schema, data: Any) -> Any:
    """`schema.load(data)`, fast when the body is valid and the schema is plain."""
    check = schema.__dict__.get(_COMPILED, missing)
    if check is missing:
        check = schema.__dict__[_COMPILED] = _compile_or_none(schema, schema.unknown)
    if check is not None:
        try:
            return check(data)
        except _Invalid:
            pass
    return schema.load(data)


def _compile_or_none(schema: Schema, unknown: str) -> Check | None:
    try:
        return _schema_check(schema, unknown)
    except _Unsupported:
        return None


def _schema_check(schema: Schema, unknown: str) -> Check:
    if any(schema._hooks.values()) or unknown not in (EXCLUDE, RAISE):
        raise _Unsupported
    plan = []  # (input key, output key, field check, required, allow_none, default)
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        if "." in attribute:
            raise _Unsupported
        plan.append(
            (
                field.data_key or name,
                attribute,
                _field_check(field),
                field.required,
                field.allow_none,
                field.load_default,
            )
        )
    known = {key for key, *_ in plan}
    strict = unknown == RAISE

    def check(data: Any) -> dict:
        if type(data) is not dict or (strict and not known.issuperset(data)):
            raise _Invalid
        out = {}
        for key, attribute, one, required, allow_none, default in plan:
            value = data.get(key, missing)
            if value is missing:
                if required:
                    raise _Invalid
                if default is not missing:
                    out[attribute] = default() if callable(default) else default
            elif value is None:
                if not allow_none:
                    raise _Invalid
                out[attribute] = None
            else:
                out[attribute] = one(value)
        return out

    return check


def _field_check(field: fields.Field) -> Check:
    kind = _kind_check(field)
    validators = list(field.validators)
    if not validators:
        return kind

    def check(value: Any) -> Any:
        value = kind(value)
        for validator in validators:
            try:
                verdict = validator(value)
            except ValidationError:
                raise _Invalid from None
            if verdict is False:  # a plain function may say no by returning False
                raise _Invalid
        return value

    return check


def _kind_check(field: fields.Field) -> Check:
    kind = type(field)
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind is fields.List:
        inner = _field_check(field.inner)
        return lambda value: [inner(item) for item in _list(value)]
    if kind is fields.Nested and not field.many and not field.only and not field.exclude:
        schema = field.schema
        return _schema_check(schema, field.unknown or schema.unknown)
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return lambda value: dict(value) if type(value) is dict else _no()
    raise _Unsupported


def _list(value: Any) -> list:
    if type(value) is not list:
        raise _Invalid
    return value


def _no() -> Any:
    raise _Invalid


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Invalid
    return value


def _integer(value: Any) -> int:
    if type(value) is not int or abs(value) > SQLITE_MAX_INT:
        raise _Invalid
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise _Invalid
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid from None
    if not math.isfinite(number):
        raise _Invalid
    return number


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _Invalid
    return value


# Exact classes only: a subclass may load differently (common.fields.Price: cents).
# For the lenient marshmallow kinds, only the exact JSON type goes the fast way (a bool
# for fields.Integer, say, or a big number, goes to marshmallow to decide).
_SCALARS: dict[type, Check] = {
    fields.String: _text,
    Label: _text,
    fields.Integer: _integer,
    StrictInteger: _integer,
    fields.Float: _number,
    StrictNumber: _number,
    fields.Boolean: _boolean,
    StrictBoolean: _boolean,
}
