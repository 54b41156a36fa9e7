"""What `bazar import` reads from a file before sending anything (docs/scale.md §4): the
header, UTF-8 with or without a BOM, line numbers, cells as numbers where they read as
numbers; and its progress lines when stderr is not a terminal."""

from __future__ import annotations

import io

import pytest

from common.ops.importer.csvfile import ImportFileError, rows, survey
from common.ops.importer.progress import Progress


def write(tmp_path, data: bytes):
    path = tmp_path / "books.csv"
    path.write_bytes(data)
    return path


def test_rows_with_their_lines_numbers_and_a_bom(tmp_path):
    text = (
        "\ufeffquantity, cost ,title,topic\r\n"
        "3,19.99,Dune,spring\r\n"
        "\r\n"
        '1,2,"Two\nlines",x\r\n'
        "x,1e400,Big,y\r\n"
        ",,Empty,z\r\n"
        "1,2,Cells,w,more\r\n"
        "-2,+.5,Signs,v\r\n"
    )
    path = write(tmp_path, text.encode())
    assert survey(path) == 6
    assert list(rows(path)) == [
        {"line": 2, "quantity": 3, "cost": 19.99, "title": "Dune", "topic": "spring"},
        {"line": 4, "quantity": 1, "cost": 2.0, "title": "Two\nlines", "topic": "x"},
        {"line": 6, "quantity": "x", "cost": "1e400", "title": "Big", "topic": "y"},
        {"line": 7, "title": "Empty", "topic": "z"},
        {"line": 8, "why": "5 cells, the header has 4"},
        {"line": 9, "quantity": -2, "cost": 0.5, "title": "Signs", "topic": "v"},
    ]


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"title,topic,cost\n", "missing quantity"),
        (b"title,topic,cost,quantity,price\n", "unknown column 'price'"),
        (b"title,topic,cost,quantity\nA,b,1,1\nCaf\xe9,b,1,1\n", "not UTF-8 at line 3"),
        (b'title,topic,cost,quantity\n"A,b,1,1\n', "not CSV"),
    ],
)
def test_a_file_that_cannot_be_imported(tmp_path, data, words):
    with pytest.raises(ImportFileError, match=words):
        survey(write(tmp_path, data))


def test_progress_off_a_terminal_is_a_line_per_tenth():
    out = io.StringIO()
    now = [0.0]
    progress = Progress(1000, out, clock=lambda: now[0])
    for _ in range(40):
        now[0] += 0.25
        progress.advance(25)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "import:  10% 100/1000 rows, 100 rows/s, ETA 0:09"
    assert lines[-1] == "import: 100% 1000/1000 rows, 100 rows/s, ETA 0:00"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_bar_drawn_again():
    out = Terminal()
    now = [0.0]
    progress = Progress(200, out, clock=lambda: now[0])
    now[0] = 1.0
    progress.advance(50)
    now[0] = 4.0
    progress.advance(150)
    progress.finish()
    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == "[#######.......................]  25% 50/200 rows, 50 rows/s, ETA 0:03"
    assert frames[1] == "[##############################] 100% 200/200 rows, 50 rows/s, ETA 0:00\n"
