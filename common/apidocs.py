"""The human-readable API page (`GET /docs`), rendered from the node's OpenAPI document.

Same source as /openapi.json, so the page cannot drift from the code. Plain
HTML on the server: no script, nothing fetched from elsewhere, so it works
on a machine without internet access and under a strict CSP.
"""

from __future__ import annotations

from typing import Any

RULES = [  # (OpenAPI keyword, how to say it)
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("pattern", "matches {}"),
    ("enum", "one of {}"),
    ("minProperties", "at least {} field(s)"),
    ("default", "default {}"),
]
AUTH_TEXT = {
    "staff": "staff: Authorization: Bearer <staff token>",
    "cluster": "cluster: HMAC signature headers (internal callers only)",
}


def rules_of(schema: dict[str, Any]) -> str:
    """'≥ 1, ≤ 1000000000, default 1' for a JSON schema's constraints."""
    said = [text.format(schema[key]) for key, text in RULES if key in schema]
    if schema.get("exclusiveMinimum") is True and "minimum" in schema:
        said[0] = f"> {schema['minimum']}"
    if schema.get("nullable"):
        said.append("may be null")
    return ", ".join(said)


def type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    return schema.get("type", "any")


def page_model(spec: dict[str, Any]) -> dict[str, Any]:
    """What the template shows: operations in path order, then the body schemas."""
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            operations.append(_operation(path, method, op))
    schemas = [
        {
            "name": name,
            "rules": rules_of(schema),  # rules on the whole body, such as minProperties
            "fields": [
                {
                    "name": field,
                    "type": type_of(prop),
                    "required": field in schema.get("required", []),
                    "rules": rules_of(prop),
                    "description": prop.get("description", ""),
                }
                for field, prop in schema.get("properties", {}).items()
            ],
        }
        for name, schema in spec.get("components", {}).get("schemas", {}).items()
    ]
    return {
        "title": spec["info"]["title"],
        "version": spec["info"]["version"],
        "operations": operations,
        "schemas": schemas,
    }


def _operation(path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    contents = op.get("requestBody", {}).get("content", {})
    body = contents.get("application/json") or next(iter(contents.values()), {})
    return {
        "method": method.upper(),
        "path": path,
        "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
        "summary": op.get("summary", ""),
        "auth": [AUTH_TEXT.get(name, name) for rule in op.get("security", []) for name in rule],
        "params": [
            {
                "name": p["name"],
                "where": p["in"],
                "type": type_of(p.get("schema", {})),
                "required": p.get("required", False),
                "rules": rules_of(p.get("schema", {})),
                "example": p.get("example", ""),
            }
            for p in op.get("parameters", [])
        ],
        "body": type_of(body["schema"]) if body else None,
        "responses": [
            {
                "status": status,
                "description": answer.get("description", ""),
                "schema": type_of(
                    answer.get("content", {}).get("application/json", {}).get("schema", {})
                )
                if "content" in answer
                else "",
            }
            for status, answer in op.get("responses", {}).items()
        ],
    }
