"""`bazar import FILE.csv` against a real cluster (docs/scale.md §4): good rows added,
each kind of bad row refused with its line and why, a repeat skipped, the same file
twice adds nothing, replicas identical; UTF-8 with a BOM; a bad header or a file that
is not UTF-8 exits 2 before anything is sent."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.cluster import ROOT


@pytest.fixture(scope="module")
def c(shared_cluster):
    return shared_cluster


def bazar(c, *args: str, config=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "common.ops.cli", *args]
    command += ["--config", str(config or c.config_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)  # noqa: S603


def write(path: Path, text: str, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def titled(c, words: str) -> dict[str, list[tuple]]:
    """Per catalog: the (id, title, topic, cost, quantity) of books whose title has `words`."""
    query = (
        "SELECT id, title, topic, cost, quantity FROM books "
        f"WHERE title LIKE '%{words}%' ORDER BY id"  # noqa: S608  # nosec B608
    )
    return {name: c.rows(name, query) for name in c.names("catalog")}


def book_count(c) -> int:
    return c.rows("catalog-1", "SELECT count(*) FROM books")[0][0]


def test_rows_added_refused_and_skipped_then_nothing_the_second_time(c, tmp_path):
    tag = uuid.uuid4().hex[:8]
    lines = [
        "topic,title,quantity,cost",  # any order
        f"imports,First {tag},10,19.99",  # 2 added
        f"imports,Second {tag},0,5",  # 3 added
        f"imports,  First {tag}  ,3,1",  # 4 repeats line 2 once trimmed
        f"imports,Zero {tag},1,0",  # 5 cost must be > 0
        f"imports,Fine {tag},1,1.999",  # 6 not whole cents
        "imports,,1,1",  # 7 no title
        f"imports,Neg {tag},-1,1",  # 8 quantity below 0
        f"imports,Word {tag},1,cheap",  # 9 cost not a number
        f"imports,Cells {tag},1,1,surplus",  # 10 a cell too many
        f"imports,{'x' * 301},1,1",  # 11 title too long
        f"imports,Half {tag},1.5,1",  # 12 quantity not an integer
        "",  # 13 a blank line: no row
        "distributed systems,RPCs for Dummies,1,40",  # 14 a seed book: skipped
        f"imports,Third {tag},7,2.5",  # 15 added
    ]
    path = write(tmp_path / "books.csv", "\n".join(lines) + "\n")
    first = bazar(c, "import", str(path), "--batch", "4")
    assert first.returncode == 1, first
    out = first.stdout.splitlines()
    assert out[0] == "added 3, skipped 2, refused 8", first.stdout
    refused = dict(line.split(": ", 1) for line in out[1:])
    assert refused.keys() == {f"line {n}" for n in (5, 6, 7, 8, 9, 10, 11, 12)}, out
    assert refused["line 5"].startswith("cost: Must be greater than 0")
    assert refused["line 6"] == "cost: must be in whole cents (at most two decimals)"
    assert refused["line 7"] == "title: Missing data for required field."
    assert refused["line 8"].startswith("quantity: Must be greater than or equal to 0")
    assert refused["line 9"] == "cost: must be a number, got str"
    assert refused["line 10"] == "5 cells, the header has 4"
    assert refused["line 11"].startswith("title: Length must be between 1 and 300")
    assert refused["line 12"] == "quantity: must be an integer, got float"
    assert "Traceback" not in first.stderr
    books = titled(c, tag)
    assert [(t, topic, cost, q) for _, t, topic, cost, q in books["catalog-1"]] == [
        (f"First {tag}", "imports", 19.99, 10),
        (f"Second {tag}", "imports", 5.0, 0),
        (f"Third {tag}", "imports", 2.5, 7),
    ]
    before = book_count(c)
    second = bazar(c, "import", str(path), "--batch", "4")
    assert second.returncode == 1, second
    assert second.stdout.splitlines()[0] == "added 0, skipped 5, refused 8", second.stdout
    assert book_count(c) == before
    c.wait_converged()
    assert titled(c, tag)["catalog-2"] == books["catalog-1"]


def test_utf8_with_a_bom_and_words_beyond_ascii(c, tmp_path):
    tag = uuid.uuid4().hex[:8]
    title = f"Ünïcode café ☕ Straße {tag}"
    path = write(tmp_path / "bom.csv", f'title,topic,cost,quantity\n"{title}",Lyrik,12.5,3\n', True)
    result = bazar(c, "import", str(path))
    assert result.returncode == 0, result
    assert result.stdout.strip() == "added 1, skipped 0, refused 0"
    c.wait_converged()
    for rows in titled(c, tag).values():
        assert [(t, topic) for _, t, topic, _, _ in rows] == [(title, "Lyrik")]
    found = c.api.get(f"/lookup/{titled(c, tag)['catalog-1'][0][0]}").json()
    assert found["title"] == title


@pytest.mark.parametrize(
    "text, words",
    [
        ("title,topic,price,quantity\nA,b,1,1\n", ["missing cost", "'price'"]),
        ("title,topic,cost,quantity,isbn\nA,b,1,1,9\n", ["unknown column 'isbn'"]),
        ("title,title,topic,cost,quantity\nA,A,b,1,1\n", ["twice: title"]),
        ("", ["empty"]),
    ],
)
def test_a_bad_header_exits_2_before_sending(c, tmp_path, text, words):
    before = book_count(c)
    result = bazar(c, "import", str(write(tmp_path / "bad.csv", text)))
    assert result.returncode == 2, result
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert book_count(c) == before


def test_a_file_not_utf8_or_missing_exits_2_before_sending(c, tmp_path):
    before = book_count(c)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"title,topic,cost,quantity\nA,b,1,1\n" + "Café,b,1,1\n".encode("latin-1"))
    result = bazar(c, "import", str(latin))
    assert result.returncode == 2, result
    assert "not UTF-8" in result.stderr
    missing = bazar(c, "import", str(tmp_path / "nowhere.csv"))
    assert missing.returncode == 2, missing
    assert "No such file" in missing.stderr
    assert book_count(c) == before


def test_no_front_end_to_take_it_exits_2(c, tmp_path):
    from tests.support.cluster import free_ports

    config = tmp_path / "elsewhere.toml"
    url = c.url_of("frontend-1")
    config.write_text(
        c.config_path.read_text().replace(url, f"http://127.0.0.1:{free_ports(1)[0]}")
    )
    (tmp_path / "var").symlink_to(c.cluster.data_dir)
    path = write(tmp_path / "one.csv", f"title,topic,cost,quantity\nLost {uuid.uuid4()},x,1,1\n")
    result = bazar(c, "import", str(path), "--patience", "1", config=config)
    assert result.returncode == 2, result
    assert result.stdout.strip() == "added 0, skipped 0, refused 0"
    assert "no answer" in result.stderr
    assert "the batch again in 0.25 s" in result.stderr  # each try again is told


def test_the_batch_size_and_patience_are_checked(c, tmp_path):
    path = write(tmp_path / "one.csv", "title,topic,cost,quantity\n")
    for option, bad in [("--batch", "0"), ("--batch", "1001"), ("--batch", "x")] + [
        ("--patience", v) for v in ("0", "-1", "nan", "inf")
    ]:
        result = bazar(c, "import", str(path), option, bad)
        assert result.returncode == 2, result
        assert option in result.stderr
