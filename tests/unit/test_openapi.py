"""common/openapi.py: what the generated document says about a route."""

from flask import Blueprint, Flask
from marshmallow import Schema

from common.fields import StrictInteger
from common.openapi import build_spec, doc


class ChangeSchema(Schema):
    openapi_extra = {"minProperties": 1}
    quantity = StrictInteger()


def spec_of(*routes) -> dict:
    app = Flask(__name__)
    bp = Blueprint("t", __name__)
    for rule, view, methods in routes:
        bp.add_url_rule(rule, view_func=view, methods=methods)
    app.register_blueprint(bp)
    return build_spec(app, "test", default_auth="cluster")


@doc(body=ChangeSchema)
def change(book_id):
    """Change a book."""


@doc(auth="none")
def named(target):
    """By name."""


def test_a_route_with_an_integer_id_documents_404():
    spec = spec_of(("/change/<int(max=9223372036854775807):book_id>", change, ["PUT"]))
    operation = spec["paths"]["/change/{book_id}"]["put"]
    assert "404" in operation["responses"]  # an id beyond 64 bits matches no route
    (param,) = operation["parameters"]
    assert param["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    assert param["example"] == 1


def test_a_route_without_an_integer_id_does_not_promise_404():
    spec = spec_of(("/named/<target>", named, ["GET"]))
    assert "404" not in spec["paths"]["/named/{target}"]["get"]["responses"]


def test_a_body_schema_carries_its_extra_rules():
    spec = spec_of(("/change/<int:book_id>", change, ["PUT"]))
    assert spec["components"]["schemas"]["Change"]["minProperties"] == 1
    body = spec["paths"]["/change/{book_id}"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Change"}


def test_error_schema_names_the_extra_fields_errors_carry():
    spec = spec_of(("/named/<target>", named, ["GET"]))
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["message"]
    assert {"message", "primary", "status", "order_id", "epoch", "data_epoch", "books"} == set(
        error["properties"]
    )


def test_signed_by_default_and_open_when_declared():
    spec = spec_of(("/change/<int:book_id>", change, ["PUT"]), ("/named/<target>", named, ["GET"]))
    assert spec["paths"]["/change/{book_id}"]["put"]["security"] == [{"cluster": []}]
    assert "401" in spec["paths"]["/change/{book_id}"]["put"]["responses"]
    assert "security" not in spec["paths"]["/named/{target}"]["get"]
