"""JSON between nodes: what one node encodes another decodes, so it may be fast.

orjson (C, several times the standard library's speed on our push bodies) for
internal request bodies and answers, replication entries and the outbox. JSON
that customers send or read keeps the standard library and Flask's provider:
their strict parser refuses duplicate keys, and their answers' format stays.
`NON_STR_KEYS`: int keys (book id -> version) become strings, as json.dumps does.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    """Raises ValueError (orjson.JSONDecodeError) on bad JSON, NaN included."""
    return orjson.loads(data)
