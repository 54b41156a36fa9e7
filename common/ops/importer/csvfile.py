"""Reading an import file: UTF-8 CSV (a BOM allowed), header `title,topic,cost,quantity`.

The whole file is read once before anything is sent (`survey`): a bad header,
bytes that are not UTF-8 or broken CSV stop the import before the cluster
sees a row. Rows then stream in batches (`rows`). Cells stay text but for
costs and quantities that read as numbers, which become JSON numbers; a
cell that does not is sent as it is and the front-end refuses the row with
the reason `POST /books` gives. An empty cell is left out (a missing field).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path

COLUMNS = ("title", "topic", "cost", "quantity")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")


class ImportFileError(Exception):
    """The file cannot be imported at all; the message says why (exit 2)."""


def survey(path: Path) -> int:
    """The number of rows, once the whole file is known to be readable."""
    return sum(1 for _ in rows(path))


def rows(path: Path) -> Iterator[dict]:
    """Each row as {"line", and its cells}; a row with more cells than the header as
    {"line", "why"} (refused here: nothing to send)."""
    line = 1
    try:
        with path.open("rb") as f:
            for row in _read(csv.reader(_decoded(f, path), strict=True), path):
                line = row["line"]
                yield row
    except csv.Error as e:
        raise ImportFileError(f"{path}: not CSV after line {line} ({e})") from None
    except OSError as e:
        raise ImportFileError(f"{path}: {e.strerror or e}") from None


def _decoded(lines, path: Path) -> Iterator[str]:
    """The file's lines as text, a BOM dropped; a line that is not UTF-8 is named."""
    for number, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportFileError(f"{path}: not UTF-8 at line {number}") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _read(reader, path: Path) -> Iterator[dict]:
    header = _header(next(reader, None), path)
    start = reader.line_num + 1  # a quoted cell may span lines: a row starts after the last
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not cells or cells == [""]:
            continue  # a blank line
        if len(cells) > len(header):
            yield {"line": line, "why": f"{len(cells)} cells, the header has {len(header)}"}
            continue
        yield {"line": line, **_fields(dict(zip(header, cells, strict=False)))}


def _header(cells: list[str] | None, path: Path) -> list[str]:
    if cells is None:
        raise ImportFileError(f"{path}: empty (the header {','.join(COLUMNS)} comes first)")
    names = [cell.strip() for cell in cells]
    missing = [c for c in COLUMNS if c not in names]
    extra = [n for n in names if n not in COLUMNS]
    twice = sorted({n for n in names if names.count(n) > 1})
    if missing or extra or twice:
        why = [f"missing {', '.join(missing)}"] if missing else []
        why += [f"unknown column {', '.join(map(repr, extra))}"] if extra else []
        why += [f"twice: {', '.join(twice)}"] if twice else []
        raise ImportFileError(
            f"{path}: header must be {','.join(COLUMNS)} (any order): {'; '.join(why)}"
        )
    return names


def _fields(cells: dict[str, str]) -> dict:
    out: dict = {}
    for name, text in cells.items():
        if text.strip() == "":
            continue  # missing: the front-end names the field
        out[name] = _number(name, text.strip()) if name in ("cost", "quantity") else text
    return out


def _number(name: str, text: str):
    """A JSON number if the cell reads as one, else the text (refused by the front-end)."""
    if name == "quantity" and INTEGER.fullmatch(text):
        return int(text)
    if NUMBER.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
    return text
