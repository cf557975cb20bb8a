"""CSV streaming: decompression, line ends, lines taken out (unterminated quotes, blank lines), headers
and exact row numbers whatever the block sizes."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest import csvstream, sources
from truckcarbon.ingest.csvstream import RowMap, csv_header
from truckcarbon.ingest.sources import read_batches

from .csvdata import HEADER_ZH, WANT_ZH, read_rows, zh_text


def test_compressed_csv_is_read(tmp_path: Path) -> None:
    text = zh_text().encode("gbk")
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text))
    with pa.CompressedOutputStream(str(tmp_path / "b.csv.zst"), "zstd") as out:
        out.write(text)
    for name in ("a.csv.gz", "b.csv.zst"):
        rows, source, bad = read_rows(tmp_path / name)
        assert rows == WANT_ZH and source == [1, 2] and bad == []


@pytest.mark.parametrize("name", ["t.csv.gz", "t.csv.zst"])
def test_a_truncated_or_damaged_compressed_file_is_a_clear_error(tmp_path: Path, name: str) -> None:
    text = b"a,b\n" + b"1,2\n" * 100_000
    f = tmp_path / name
    with pa.CompressedOutputStream(str(f), "gzip" if name.endswith("gz") else "zstd") as out:
        out.write(text)
    whole = f.read_bytes()
    f.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="the file is damaged or truncated"):
        list(read_batches(f)[0])
    f.write_bytes(b"not compressed at all")
    with pytest.raises(InputError, match=re.escape(f"{f}: cannot decompress")):
        list(read_batches(f)[0])


def test_an_unterminated_quote_costs_its_line_only(tmp_path: Path) -> None:
    """Row 10 of 480 opens a quote it never closes: the other 479 rows are read, with their own rows."""
    lines = ["vehicle_id,ts,lon,lat"] + [f"1,2022-03-10 08:00:{i % 60:02d},116.{i},39.9" for i in range(1, 481)]
    lines[10] = '1,2022-03-10 08:00:00,"116.3,39.9'
    f = tmp_path / "p.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, source, bad = read_rows(f)
    assert len(rows) == 479
    assert bad == [(10, '1,2022-03-10 08:00:00,"116.3,39.9', "unterminated_quote")]
    assert source == [*range(1, 10), *range(11, 481)]
    assert rows[9]["lon"] == "116.11"  # the row after the line taken out is data row 11


def test_quoted_commas_doubled_quotes_malformed_and_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(
        b"vehicle_id,ts,lon,lat\r\n"
        b'1,"2022-03-10 08:00:00","116,3",39.9\r\n'  # row 1: a quoted comma
        b'2,"say ""hi""",116.3,39.9\r\n'  # row 2: doubled quotes
        b'3,"a""b,116.3,39.9\r\n'  # row 3: three quotes -> unterminated
        b"4,t,116.3,39.9,EXTRA\r\n"  # row 4: wrong number of fields
        b"\r\n"  # row 5: blank
        b"6,t,116.3,39.9\r\n"
        b'7,"multi\r\n'  # rows 7 and 8: a line break inside quotes is two unterminated quotes
        b'line",116.3,39.9\r\n'
        b"9,t,116.3,39.9"  # no final line end
    )
    rows, source, bad = read_rows(f)
    assert [r["vehicle_id"] for r in rows] == ["1", "2", "6", "9"]
    assert rows[0]["lon"] == "116,3" and rows[1]["ts"] == 'say "hi"'
    assert source == [1, 2, 6, 9]
    assert bad == [
        (3, '3,"a""b,116.3,39.9', "unterminated_quote"),
        (4, "4,t,116.3,39.9,EXTRA", "malformed_line"),
        (7, '7,"multi', "unterminated_quote"),
        (8, 'line",116.3,39.9', "unterminated_quote"),
    ]


def _messy(n: int, seed: int) -> tuple[bytes, list[int], list[tuple[int, str, str]]]:
    """A CSV of ``n`` data lines, some with unterminated quotes, wrong field counts or blank; the kept
    data rows and the lines that are not rows."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(6, size=n, p=[0.83, 0.05, 0.04, 0.03, 0.03, 0.02])
    out = ["vehicle_id,ts,lon,lat"]
    kept: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for row, kind in enumerate(kinds.tolist(), 1):
        if kind == 0:
            line = f'{row},"2022-03-10 08:00:00","1{row % 7},5",39.9'
            kept.append(row)
        elif kind == 1:
            line = f'{row},2022-03-10 08:00:00,"116.3,39.9'
            bad.append((row, line, "unterminated_quote"))
        elif kind == 2:
            line = f"{row},x"
            bad.append((row, line, "malformed_line"))
        elif kind == 3:
            line = ""
        elif kind == 4:
            line = f'{row},"京""A{row}""",116.3,39.9'
            kept.append(row)
        else:
            line = f'{row},x","116.3,39.9'
            bad.append((row, line, "unterminated_quote"))
        out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8"), kept, bad


@pytest.mark.parametrize(("read_block", "csv_block"), [(7, 64), (64, 50), (1000, 4096), (1 << 20, 1 << 24)])
def test_row_numbers_stay_exact_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_block: int, csv_block: int
) -> None:
    """Lines taken out, lines Arrow skips and blank lines, in blocks of any size (lines cut anywhere)."""
    data, kept, bad = _messy(3000, seed=read_block)
    f = tmp_path / "p.csv"
    f.write_bytes(data)
    monkeypatch.setattr(csvstream, "READ_BLOCK", read_block)
    monkeypatch.setattr(sources, "CSV_BLOCK", csv_block)
    rows, source, got_bad = read_rows(f)
    assert source == kept and [int(str(r["vehicle_id"])) for r in rows] == kept
    assert got_bad == bad
    assert sorted(bad) == bad  # sanity


def test_a_line_longer_than_the_limit_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvstream, "READ_BLOCK", 16)
    monkeypatch.setattr(csvstream, "MAX_LINE", 100)
    f = tmp_path / "p.csv"
    f.write_bytes(b"a,b\n1,2\n" + b"x" * 300 + b"\n")
    with pytest.raises(InputError, match=re.escape(f"{f}: line 3 is longer than")):
        list(read_batches(f)[0])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file (no header line)"),
        (b"\n\r\n\n", "empty file (no header line)"),
        (b'a,"b\n1,2\n', "the header (line 1) has an unterminated quote ('a,\"b')"),
        (b'\na"b,"c\n1,2\n', "the header (line 2) has an unterminated quote ('a\"b,\"c')"),
    ],
)
def test_header_problems_are_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(data)
    with pytest.raises(InputError, match=re.escape(f"{f}: {message}")):
        list(read_batches(f)[0])


def test_a_header_after_blank_lines_and_a_header_only_file(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes(b"\n\nvehicle_id,ts\n1,2\n\n3,4\n")
    batches, bad = read_batches(f)
    got = [(b.table.to_pylist(), b.source_rows(np.arange(b.table.num_rows)).tolist()) for b in batches]
    assert bad.header_line == 3
    assert got == [([{"vehicle_id": "1", "ts": "2"}, {"vehicle_id": "3", "ts": "4"}], [1, 3])]
    f.write_bytes(b"vehicle_id,ts\n")
    assert sum(b.table.num_rows for b in read_batches(f)[0]) == 0


def test_the_row_map_keeps_only_the_skipped_rows_not_yet_passed() -> None:
    rng = np.random.default_rng(7)
    skipped = np.sort(rng.choice(np.arange(1, 20_001), size=4000, replace=False))
    kept = np.setdiff1d(np.arange(1, 20_001), skipped)
    row_map = RowMap()
    got: list[int] = []
    fed = 0
    first = 0
    for n in (0, 1, 500, 3, 7000, 2, 20_000):
        # Rows taken out arrive ahead of the rows read (as the filter runs ahead of the parser).
        while fed < skipped.size and skipped[fed] <= (kept[min(first + n, kept.size - 1)] + 50):
            row_map.skip(int(skipped[fed]))
            fed += 1
        n = min(n, kept.size - first)
        rows = row_map.rows(first, n)
        assert rows is not None
        got += rows.tolist()
        first += n
        assert row_map.pending.size <= 60  # the rows passed are forgotten
    assert got == kept.tolist()
    assert RowMap().rows(0, 5) is None


def test_csv_header_reads_only_the_header(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_bytes("\r\n".join([HEADER_ZH, "x" * 10]).encode("gbk") + b'\r\n"unterminated\r\n')
    assert csv_header(f) == HEADER_ZH.split(",")
    f.write_bytes(b"")
    with pytest.raises(InputError, match=re.escape(f"{f}: empty file (no header line)")):
        csv_header(f)


def test_the_row_map_counts_rows_skipped_before_and_between() -> None:
    row_map = RowMap()
    for row in (1, 4, 5):  # data rows 1, 4 and 5 are not read
        row_map.skip(row)
    assert row_map.rows(0, 3).tolist() == [2, 3, 6]  # type: ignore[union-attr]
    assert row_map.rows(3, 2).tolist() == [7, 8]  # type: ignore[union-attr]
