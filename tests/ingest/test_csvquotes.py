"""Unterminated quotes: the lines Arrow's parser would read on past are found, and only those."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from truckcarbon.ingest.csvquotes import opens_quote, unterminated

from .csvdata import read_rows


def test_a_stray_quote_that_leaves_a_later_value_open_costs_its_line_only(tmp_path: Path) -> None:
    """Even numbers of quotes, but a quote inside an unquoted value is text, so the next one opens a
    value that the line never closes: Arrow would read the following lines into it."""
    f = tmp_path / "p.csv"
    f.write_bytes(
        b"a,b,c\n"
        b'x"y,"z,3\n'  # row 1: 'x"y' is text, '"z,3' opens a value
        b'1,x","y,3\n'  # row 2: 'x"' is text, '"y,3' opens a value
        b'1,"a"x"y",2\n'  # row 3: read as 1 | ax"y" | 2
        b'1,ab"",3\n'  # row 4: read as 1 | ab"" | 3
        b'"""",""\n'  # row 5: a quote | empty -> wrong number of fields
        b"4,5,6\n"
    )
    rows, source, bad = read_rows(f, kind=None)
    assert rows == [
        {"a": "1", "b": 'ax"y"', "c": "2"},
        {"a": "1", "b": 'ab""', "c": "3"},
        {"a": "4", "b": "5", "c": "6"},
    ]
    assert source == [3, 4, 6]
    assert bad == [
        (1, 'x"y,"z,3', "unterminated_quote"),
        (2, '1,x","y,3', "unterminated_quote"),
        (5, '"""",""', "malformed_line"),
    ]


def _arrow_reads_apart(line: bytes) -> bool:
    """Whether Arrow's CSV reader, alone, reads the line after ``line`` as a row of its own."""
    data = b"h\n" + line + b"\nEND\n"
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(column_types={"h": pa.string()}),
        )
    except pa.ArrowInvalid:
        return False
    return "END" in table["h"].to_pylist()


@pytest.mark.parametrize("seed", range(2))
def test_random_quoting_never_swallows_the_next_line(tmp_path: Path, seed: int) -> None:
    """Lines of commas, quotes and letters, each followed by a sentinel line: every sentinel is read as
    its own row; a line with an even number of quotes is taken out only when Arrow would read on past it."""
    rng = np.random.default_rng(seed)
    lines = [bytes(rng.choice(list(b'a,"'), size=int(rng.integers(1, 9))).tolist()) for _ in range(1000)]
    f = tmp_path / "p.csv"
    f.write_bytes(b"h\n" + b"".join(line + b"\nEND\n" for line in lines))
    rows, source, bad = read_rows(f, kind=None)
    sentinels = [src for r, src in zip(rows, source, strict=True) if r["h"] == "END"]
    assert sentinels == [2 * i + 2 for i in range(len(lines))]
    taken = {row for row, _, reason in bad if reason == "unterminated_quote"}
    for i, line in enumerate(lines):
        if line.count(b'"') % 2 == 0:
            assert (2 * i + 1 in taken) == (not _arrow_reads_apart(line)), line


@pytest.mark.parametrize(
    ("line", "open_"),
    [
        (b"a,b,c", False),
        (b'"a,b",c', False),
        (b'"a', True),
        (b'x"y,"z', True),  # the first quote is text, the second opens a value
        (b'x"y', False),
        (b'"say ""hi""",2', False),
        (b'"a""', True),  # a doubled quote inside a value that never closes
        (b'"a"x"y",2', False),  # after the closing quote, quotes are text
        (b"", False),
    ],
)
def test_opens_quote_reads_a_line_as_the_parser_does(line: bytes, open_: bool) -> None:
    assert opens_quote(line) is open_


def test_unterminated_marks_each_open_line_of_a_block() -> None:
    lines = [b'1,"a",2', b'2,"b', b'x"y,"z,3', b"4,5,6", b'"""",""']
    block = b"\n".join(lines) + b"\n"
    a = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(a == 0x0A)
    starts = np.concatenate(([0], ends[:-1] + 1))
    assert unterminated(a, starts, ends).tolist() == [opens_quote(line) for line in lines]
    assert unterminated(a, starts, ends).tolist() == [False, True, True, False, False]
