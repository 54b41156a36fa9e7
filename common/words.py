"""The words of a word search (`GET /search?q=`, docs/scale.md §2), read alike by the
front-end and the catalog."""

from __future__ import annotations

import re
import unicodedata

from common.web import ApiError

Q_MAX = 200
Q_SCHEMA = {"type": "string", "minLength": 1, "maxLength": Q_MAX}
# A word: a run of letters and digits, as SQLite's unicode61 tokenizer keeps a token.
WORD = re.compile(r"[^\W_]+")


def words(q: str | None) -> list[str]:
    """The words of `q`; 400 unless it is 1-200 characters with a letter or digit."""
    if q is None:
        raise ApiError(400, "q: the words to search for are required")
    if not 0 < len(q) <= Q_MAX:
        raise ApiError(400, f"q: must be 1-{Q_MAX} characters")
    found = WORD.findall(unicodedata.normalize("NFKC", q))
    if not found:
        raise ApiError(400, "q: must hold at least one letter or digit")
    return found
