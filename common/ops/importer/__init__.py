"""`bazar import FILE.csv` (docs/scale.md §4): add the books of a CSV file in batches.

The file is read whole first (`csvfile.survey`): a bad header, a file that
is not UTF-8 or not CSV exits 2 before anything is sent. Batches of
`--batch` rows then go to a front-end (`sender`); progress shows on stderr
(`progress`). The end: `added N, skipped M, refused K` and a line per
refused row. Exit 0 if every row was added or skipped, 1 if some were
refused, 2 if the file could not be read or no front-end took a batch.
"""

from __future__ import annotations

import argparse
import math
import sys
from itertools import islice
from pathlib import Path

from common.config import Cluster
from common.ops.importer.csvfile import ImportFileError, rows, survey
from common.ops.importer.progress import Progress
from common.ops.importer.sender import PATIENCE, ClusterError, clean, send

MAX_BATCH = 1000  # what POST /books/import takes


def add_arguments(add) -> None:
    """The `import` verb; `add` is cli.py's helper (name, func, help)."""
    verb = add("import", cmd_import, "add the books of a CSV file (title,topic,cost,quantity)")
    verb.add_argument("file", type=Path, metavar="FILE.csv", help="UTF-8 CSV, a header first")
    verb.add_argument(
        "--batch",
        type=_batch,
        default=MAX_BATCH,
        metavar="N",
        help=f"rows per request, 1-{MAX_BATCH} (default {MAX_BATCH})",
    )
    verb.add_argument(
        "--patience",
        type=_seconds,
        default=PATIENCE,
        metavar="S",
        help=f"seconds a batch is tried again without an answer (default {PATIENCE:g})",
    )


def _batch(text: str) -> int:
    if text.isdigit() and 1 <= int(text) <= MAX_BATCH:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_BATCH}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def cmd_import(cluster: Cluster, args) -> int:
    tally = {"added": 0, "skipped": 0, "refused": []}
    try:
        total = survey(args.file)
        progress = Progress(total)
        batches = _batches(rows(args.file), args.batch)
        for batch in batches:
            _count(tally, _import(cluster, batch, args.patience, progress.note))
            progress.advance(len(batch))
        progress.finish()
    except ImportFileError as e:
        print(f"bazar: import: {e}", file=sys.stderr)
        return 2
    except ClusterError as e:
        _report(tally)
        print(f"bazar: import: stopped: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # what was done is done: importing the file again is safe
        _report(tally)
        print("bazar: import: interrupted", file=sys.stderr)
        return 130
    _report(tally)
    return 1 if tally["refused"] else 0


def _batches(found, size: int):
    while batch := list(islice(found, size)):
        yield batch


def _import(cluster: Cluster, batch: list[dict], patience: float, note) -> dict:
    """One batch's answer; rows refused here (too many cells) are not sent."""
    refused = [{"line": r["line"], "why": r["why"]} for r in batch if "why" in r]
    sendable = [r for r in batch if "why" not in r]
    answer = (
        send(cluster, sendable, patience, note)
        if sendable
        else {"added": [], "skipped": [], "refused": []}
    )
    return {**answer, "refused": refused + answer["refused"]}


def _count(tally: dict, answer: dict) -> None:
    tally["added"] += len(answer["added"])
    tally["skipped"] += len(answer["skipped"])
    tally["refused"] += answer["refused"]


def _report(tally: dict) -> None:
    refused = sorted(tally["refused"], key=lambda r: r["line"])
    print(f"added {tally['added']}, skipped {tally['skipped']}, refused {len(refused)}")
    for row in refused:
        print(f"line {row['line']}: {clean(row['why'])}")
