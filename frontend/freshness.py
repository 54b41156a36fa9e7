"""What a client asks of a cached answer, from its `Cache-Control` request header.

- `no-cache`: read a catalog replica, never the cache (nor a stale copy).
- `max-stale[=N]`: when no fresh answer can be had, an answer that stopped
  being known fresh at most N seconds ago will do (no N: any staleness).

Parsing is lenient the way HTTP caches are (RFC 9111 §5.2): directive names
ignore case, a quoted number is accepted, and a directive with a malformed
argument is ignored rather than refused, so an odd header never costs a 400.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# RFC 9111 §1.2.2: a delta-seconds value too large to represent counts as 2^31.
DELTA_SECONDS_CAP = 2**31

HEADER_SCHEMA = {
    "type": "string",
    "description": "no-cache: read a catalog replica. max-stale[=N]: if no fresh answer can "
    "be had (no read lease, or no replica answers), accept one stale by at most N seconds "
    "(no N: any); such an answer carries an Age header.",
    "example": "max-stale=30",
}


@dataclass(frozen=True)
class Freshness:
    no_cache: bool = False
    max_stale: float | None = None  # seconds of staleness accepted; None: none; inf: any


ANY_FRESH = Freshness()  # no header: the usual case, answered without parsing


def parse(header: str | None) -> Freshness:
    if not header:
        return ANY_FRESH
    no_cache, max_stale = False, None
    for directive in header.split(","):
        name, has_value, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name == "no-cache":
            no_cache = True
        elif name == "max-stale":
            seconds = _delta_seconds(value) if has_value else math.inf
            if seconds is not None:
                max_stale = seconds if max_stale is None else max(max_stale, seconds)
    return Freshness(no_cache, max_stale)


def _delta_seconds(text: str) -> float | None:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not re.fullmatch(r"[0-9]+", text):
        return None
    digits = text.lstrip("0") or "0"
    # Eleven digits are past the cap anyway, and int() of thousands of digits raises.
    return float(DELTA_SECONDS_CAP if len(digits) > 10 else min(int(digits), DELTA_SECONDS_CAP))
