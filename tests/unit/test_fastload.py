"""common.fastload answers exactly what marshmallow answers: the same loaded body for a
valid one, the same ValidationError for anything else (the hot schemas, and bodies
mutated at random: keys dropped or added, values of every JSON type swapped in)."""

from __future__ import annotations

import copy
import random

import pytest
from marshmallow import ValidationError

from catalog.schemas import BatchSchema, CatalogPushSchema
from common import fastload
from common.web import public_schema, tolerant
from frontend.schemas import BuyBodySchema, OrderBodySchema
from order.schemas import ManySchema, OrderPushSchema

ORDER = {
    "order_id": "k" + "a" * 31,
    "book_id": 1,
    "quantity": 2,
    "total": 50.0,
    "status": "confirmed",
    "created_at": "2026-12-02T08:00:00.000+00:00",
}
LINE = {"book_id": 1, "quantity": 2, "unit_price": "25.00"}
BOOK = {
    "id": 1,
    "title": "RPCs for Dummies",
    "topic": "distributed systems",
    "cost": 40.0,
    "quantity": 898,
    "version": 3,
    "deleted_at": None,
    "delete_comment": None,
}
DECISION = {**{k: v for k, v in ORDER.items() if k != "created_at"}, "status": "applied"}
DECISION["items"] = '[{"book_id":1,"quantity":2}]'
LINES = [{"book_id": 1, "quantity": 2}, {"book_id": 3, "quantity": 1}]
BODIES = [  # (schema class, a valid body)
    (OrderPushSchema, {"entries": [{"order": ORDER, "items": [LINE]}] * 3}),
    (CatalogPushSchema, {"epoch": 4, "entries": [{"order": DECISION, "books": [BOOK]}] * 2}),
    (ManySchema, {"orders": [{"items": LINES, "idempotency_key": "bench-1"}]}),
    (BatchSchema, {"orders": [{"order_id": "k1", "items": LINES, "origin": "frontend-1"}]}),
    (BuyBodySchema, {"quantity": 3}),
    (OrderBodySchema, {"items": LINES}),
]
ODD_VALUES = [None, True, 0, -1, 2**63, 1.5, float("nan"), "", "x", "3", [], [1], {}, {"a": 1}]


def _answer(load, data):
    try:
        return "ok", load(data)
    except ValidationError as e:
        return "error", e.messages


@pytest.mark.parametrize("internal", [True, False], ids=["internal", "public"])
@pytest.mark.parametrize(("shape", "body"), BODIES, ids=[s.__name__ for s, _ in BODIES])
def test_valid_bodies_load_as_marshmallow_loads_them(shape, body, internal):
    schema = tolerant(shape) if internal else public_schema(shape)
    expected = schema.load(copy.deepcopy(body))
    assert fastload.load(schema, copy.deepcopy(body)) == expected
    assert list(fastload.load(schema, copy.deepcopy(body))) == list(expected)  # key order


@pytest.mark.parametrize("internal", [True, False], ids=["internal", "public"])
@pytest.mark.parametrize(("shape", "body"), BODIES, ids=[s.__name__ for s, _ in BODIES])
def test_mutated_bodies_get_marshmallows_answer(shape, body, internal):
    schema = tolerant(shape) if internal else public_schema(shape)
    rng = random.Random(f"{shape.__name__}-{internal}")
    for _ in range(300):
        mutated = _mutate(copy.deepcopy(body), rng)
        fast = _answer(lambda d: fastload.load(schema, d), copy.deepcopy(mutated))
        assert fast == _answer(schema.load, copy.deepcopy(mutated)), mutated


def test_the_hot_schemas_are_compiled_not_left_to_marshmallow():
    for shape, body in BODIES:
        for schema in (tolerant(shape), public_schema(shape)):
            fastload.load(schema, copy.deepcopy(body))
            assert schema.__dict__[fastload._COMPILED] is not None, shape.__name__


def _mutate(node, rng: random.Random):
    """One random change somewhere in the body: a value swapped, a key dropped or added."""
    containers = []

    def walk(value):
        if isinstance(value, dict | list):
            containers.append(value)
            for child in value.values() if isinstance(value, dict) else value:
                walk(child)

    walk(node)
    target = rng.choice(containers)
    if isinstance(target, list):
        if target and rng.random() < 0.7:
            target[rng.randrange(len(target))] = rng.choice(ODD_VALUES)
        else:
            target.append(rng.choice(ODD_VALUES))
    elif target and rng.random() < 0.6:
        target[rng.choice(list(target))] = rng.choice(ODD_VALUES)
    elif target and rng.random() < 0.5:
        del target[rng.choice(list(target))]
    else:
        target["unexpected"] = rng.choice(ODD_VALUES)
    return node
