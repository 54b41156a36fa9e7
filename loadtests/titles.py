"""A catalog of real size to import: N distinct books, the same for the same seed.

    .venv/bin/python loadtests/titles.py 100000 > books.csv   # then: bazar import books.csv

From Python (the bench's `--titles N`, scripts/import_rate.py): `write_file`, then
`import_file` into a running cluster through the CLI, as an operator would.

Titles are three words of WORDS in one of a few patterns, so word search has
something to find; about 50 topics. Row i takes the words of a scrambled
index (a bijection of 0..len(WORDS)**3 - 1), so no two titles repeat: every
row of the file is added, none skipped. Costs in whole cents, stock 0-500.
"""

from __future__ import annotations

import csv
import math
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]

WORDS = """
amber anchor apple archive arrow atlas autumn badger bakery balance banner barley
beacon bell birch blossom bridge bronze brook candle canyon canvas captain castle
cedar chapel cherry circle citadel clock cloud clover comet compass copper coral
cottage crane crystal dawn delta desert diamond dragon dream dune eagle echo ember
empire engine falcon feather fern festival field flame forest fortune fountain fox
frost galaxy garden giant glacier globe gold granite harbor harvest hawk heart
heron hill hollow honey horizon island ivory jade journey jungle kettle kingdom
lagoon lantern lark legend lemon library lighthouse lily lion lotus maple marble
meadow mirror moon mountain nebula needle night oak ocean olive orbit orchard otter
owl palace panther paper pearl pebble pepper phoenix pine planet poem portrait
prairie prism quarry quartz queen quill rabbit rain raven reef ridge river robin
rose ruby saffron sail salt sapphire scarlet shadow shell silver sky slate snow
sparrow spice spring star stone storm summer sun swan tempest thistle thunder tide
tiger timber topaz tower trail tulip valley velvet violet voyage walnut wave whale
willow wind winter wolf wonder harp zephyr meridian sonnet cipher vector kernel
signal packet router socket thread lattice matrix tensor quantum photon neutron
"""
WORDS = tuple(dict.fromkeys(WORDS.split()))  # distinct, in a fixed order
PATTERNS = (
    "The {0} of the {1} {2}",
    "{0} and {1}: a {2} story",
    "A Guide to {0} {1} {2}",
    "{0} {1} {2}",
    "Notes on the {0} {1} {2}",
)
SUBJECTS = (
    "distributed systems", "databases", "networks", "operating systems", "compilers",
    "algorithms", "cryptography", "machine learning", "statistics", "calculus",
    "linear algebra", "physics", "chemistry", "biology", "astronomy", "geology",
    "ecology", "history", "philosophy", "poetry", "drama", "mystery", "romance",
    "science fiction", "fantasy", "travel", "cooking", "gardening", "architecture",
    "painting", "music", "film", "photography", "economics", "law", "politics",
    "psychology", "sociology", "linguistics", "education", "medicine", "nursing",
    "sports", "chess", "children", "comics", "religion", "mythology", "design",
    "undergraduate school",
)  # fmt: skip
COLUMNS = ("title", "topic", "cost", "quantity")


def books(count: int, seed: int = 23) -> Iterator[dict]:
    """`count` distinct books (at most len(WORDS) ** 3)."""
    space = len(WORDS) ** 3
    if count > space:
        raise ValueError(f"at most {space} distinct titles")
    rng = random.Random(seed)
    step = _coprime(space, rng)
    start = rng.randrange(space)
    for i in range(count):
        n = (start + i * step) % space
        a, rest = divmod(n, len(WORDS) ** 2)
        b, c = divmod(rest, len(WORDS))
        words = [WORDS[a].title(), WORDS[b], WORDS[c]]
        yield {
            "title": rng.choice(PATTERNS).format(*words),
            "topic": rng.choice(SUBJECTS),
            "cost": f"{rng.randrange(100, 20000) / 100:.2f}",
            "quantity": rng.randrange(0, 501),
        }


def _coprime(space: int, rng: random.Random) -> int:
    """A step whose multiples visit every index once (gcd with `space` is 1)."""
    while True:
        step = rng.randrange(space // 3, space)
        if math.gcd(step, space) == 1:
            return step


def write_csv(count: int, out: TextIO, seed: int = 23) -> None:
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(books(count, seed))


def write_file(path: Path, count: int, seed: int = 23) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        write_csv(count, f, seed)
    return path


def import_file(config: str | Path, path: Path, batch: int = 1000) -> tuple[float, str]:
    """`bazar import` of `path` into a running cluster: (seconds, its summary line).
    Raises RuntimeError if it did not exit 0."""
    command = [sys.executable, "-m", "common.ops.cli", "import", str(path)]
    command += ["--batch", str(batch), "--config", str(config)]
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=7200)  # noqa: S603  # nosec B603
    took = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(f"import failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return took, done.stdout.strip().splitlines()[0]


if __name__ == "__main__":
    write_csv(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.stdout)
