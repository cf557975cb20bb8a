"""Input files: hashes of the run manifest; reading CSV (encodings, compression, quotes, row numbers) and
Parquet with the columns renamed to the contract names."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest import sources
from truckcarbon.ingest.sources import (
    SourceOptions,
    bytes_digest,
    discover,
    file_digest,
    mapped_names,
    read_batches,
    read_table,
)

# BLAKE3's published test vectors (github.com/BLAKE3-team/BLAKE3, test_vectors.json and README).
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


@pytest.mark.parametrize(("data", "want"), [(b"", EMPTY), (b"abc", ABC)])
def test_digests_are_blake3(tmp_path, data, want):
    f = tmp_path / "x.bin"
    f.write_bytes(data)
    assert file_digest(f) == bytes_digest(data) == f"blake3:{want}"


def test_a_file_read_in_pieces_hashes_as_a_whole(tmp_path):
    """Files larger than the read buffer (256 KiB) hash like their bytes at once; one changed byte shows."""
    data = bytearray(hashlib.shake_256(b"truckcarbon").digest(3_000_001))
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    whole = file_digest(f)
    assert whole == bytes_digest(bytes(data))
    data[2_000_000] ^= 1
    f.write_bytes(data)
    assert file_digest(f) != whole


# ---------------------------------------------------------------- reading CSV and Parquet

HEADER_ZH = "车辆ID,GPS时间,经度,纬度,速度"
ROWS_ZH = ["京A12345,2022-03-10 08:00:00,116.3,39.9,60", "冀B00001,2022-03-10 08:00:30,116.31,39.91,0"]
WANT_ZH = [
    {"vehicle_id": "京A12345", "ts": "2022-03-10 08:00:00", "lon": "116.3", "lat": "39.9", "speed_kmh": "60"},
    {"vehicle_id": "冀B00001", "ts": "2022-03-10 08:00:30", "lon": "116.31", "lat": "39.91", "speed_kmh": "0"},
]


def _read(path: Path, **options: object) -> tuple[list[dict[str, object]], list[int], list[tuple[int, str, str]]]:
    """Rows, their source rows and the lines that are not rows."""
    batches, bad = read_batches(path, options=SourceOptions(**options))  # type: ignore[arg-type]
    rows: list[dict[str, object]] = []
    source: list[int] = []
    for b in batches:
        rows += b.table.to_pylist()
        source += b.source_rows(np.arange(b.table.num_rows, dtype=np.int64)).tolist()
    return rows, source, sorted(bad.lines)


def _zh_text() -> str:
    return HEADER_ZH + "\n" + "\n".join(ROWS_ZH) + "\n"


@pytest.mark.parametrize(
    ("name", "data", "encoding"),
    [
        ("utf8.csv", _zh_text().encode("utf-8"), None),
        ("bom.csv", codecs.BOM_UTF8 + _zh_text().encode("utf-8"), None),
        ("bom-given.csv", codecs.BOM_UTF8 + _zh_text().encode("utf-8"), "utf-8"),
        ("gbk.csv", _zh_text().encode("gbk"), None),
        ("gbk-given.csv", _zh_text().encode("gbk"), "gbk"),
        ("gb18030.csv", _zh_text().encode("gb18030"), "gb18030"),
        ("utf16.csv", _zh_text().encode("utf-16"), None),
        ("crlf.csv", _zh_text().replace("\n", "\r\n").encode("gbk"), None),
        ("cr.csv", _zh_text().replace("\n", "\r").encode("utf-8"), None),
        ("no-final-newline.csv", _zh_text().rstrip("\n").encode("gb18030"), None),
    ],
)
def test_encodings_are_detected_or_given_and_headers_decoded(tmp_path: Path, name: str, data: bytes, encoding) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    rows, source, bad = _read(f, encoding=encoding)
    assert rows == WANT_ZH and source == [1, 2] and bad == []
    assert mapped_names(f, SourceOptions(encoding=encoding)) == {
        "车辆ID": "vehicle_id",
        "GPS时间": "ts",
        "经度": "lon",
        "纬度": "lat",
        "速度": "speed_kmh",
    }


def test_gbk_after_a_long_ascii_start_is_still_detected(tmp_path: Path) -> None:
    """The encoding is decided at the first non-ASCII byte, however far into the file it is."""
    lines = ["vehicle_id,ts,lon,lat"] + [f"{i},2022-03-10 08:00:00,116.3,39.9" for i in range(100_000)]
    lines.append("京A12345,2022-03-10 08:00:00,116.3,39.9")
    f = tmp_path / "late.csv"
    f.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    rows, source, bad = _read(f)
    assert len(rows) == 100_001 and rows[-1]["vehicle_id"] == "京A12345" and source[-1] == 100_001 and not bad


def test_a_bad_byte_after_the_detection_window_names_its_offset(tmp_path: Path) -> None:
    good = ("车辆ID,ts\n" + "京A12345,1\n" * 200_000).encode("utf-8")
    assert len(good) > 2 * sources.DETECT_BYTES
    f = tmp_path / "late-bad.csv"
    f.write_bytes(good + b"\xb3\xb5,2\n" + b"x,3\n")
    with pytest.raises(InputError) as err:
        list(read_batches(f)[0])
    msg = str(err.value)
    assert msg.startswith(f"{f}: the byte 0xb3 at byte offset {len(good)} is not valid utf-8")
    assert "--encoding gb18030" in msg and "re-export it as UTF-8" in msg
    gz = tmp_path / "late-bad.csv.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    with pytest.raises(InputError, match=f"byte offset {len(good)} of the decompressed \\(gzip\\) data"):
        list(read_batches(gz)[0])


@pytest.mark.parametrize(
    ("data", "encoding", "offset", "message"),
    [
        (_zh_text().encode("gbk"), "utf-8", 0, "is not valid utf-8 (the encoding given)"),
        ("车辆ID,ts\n".encode("gbk") + b"a,\x80\n", None, 12, "is not valid gb18030 (the encoding detected"),
        ("车辆ID,ts\n".encode("gbk") + b"a,\xff\xff\n", "gbk", 12, "is not valid gbk (the encoding given)"),
        (b"a,b\n1,\xe8\xbd", None, 6, "is not valid utf-8"),  # a character cut at the end of the file
        (codecs.BOM_UTF8 + b"a,b\n1,\xff\n", None, 9, "(the encoding of its byte order mark)"),
    ],
)
def test_undecodable_bytes_are_a_clear_error(tmp_path: Path, data: bytes, encoding, offset: int, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(data)
    with pytest.raises(InputError) as err:
        list(read_batches(f, options=SourceOptions(encoding=encoding))[0])
    msg = str(err.value)
    assert msg.startswith(f"{f}: ") and f"at byte offset {offset} " in msg and message in msg


def test_an_unknown_encoding_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{f}: unknown encoding 'gbkk'")):
        list(read_batches(f, options=SourceOptions(encoding="gbkk"))[0])
    with pytest.raises(InputError, match="is not a text encoding"):
        list(read_batches(f, options=SourceOptions(encoding="base64"))[0])


def test_compressed_csv_is_read_and_discovered(tmp_path: Path) -> None:
    text = _zh_text().encode("gbk")
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text))
    with pa.CompressedOutputStream(str(tmp_path / "b.csv.zst"), "zstd") as out:
        out.write(text)
    (tmp_path / "c.csv.bz2").write_bytes(b"")
    assert [p.name for p in discover(tmp_path, "pings")] == ["a.csv.gz", "b.csv.zst"]
    for name in ("a.csv.gz", "b.csv.zst"):
        rows, source, bad = _read(tmp_path / name)
        assert rows == WANT_ZH and source == [1, 2] and bad == []
    with pytest.raises(InputError, match=re.escape(".csv, .csv.gz, .csv.zst")):
        discover(tmp_path / "c.csv.bz2", "pings")


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
    rows, source, bad = _read(f)
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
    rows, source, bad = _read(f)
    assert [r["vehicle_id"] for r in rows] == ["1", "2", "6", "9"]
    assert rows[0]["lon"] == "116,3" and rows[1]["ts"] == 'say "hi"'
    assert source == [1, 2, 6, 9]
    assert bad == [
        (3, '3,"a""b,116.3,39.9', "unterminated_quote"),
        (4, "4,t,116.3,39.9,EXTRA", "malformed_line"),
        (7, '7,"multi', "unterminated_quote"),
        (8, 'line",116.3,39.9', "unterminated_quote"),
    ]


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
    rows, source, bad = _read(f, kind=None)
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
    rows, source, bad = _read(f, kind=None)
    sentinels = [src for r, src in zip(rows, source, strict=True) if r["h"] == "END"]
    assert sentinels == [2 * i + 2 for i in range(len(lines))]
    taken = {row for row, _, reason in bad if reason == "unterminated_quote"}
    for i, line in enumerate(lines):
        if line.count(b'"') % 2 == 0:
            assert (2 * i + 1 in taken) == (not _arrow_reads_apart(line)), line


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
    monkeypatch.setattr(sources, "READ_BLOCK", read_block)
    monkeypatch.setattr(sources, "CSV_BLOCK", csv_block)
    rows, source, got_bad = _read(f)
    assert source == kept and [int(str(r["vehicle_id"])) for r in rows] == kept
    assert got_bad == bad
    assert sorted(bad) == bad  # sanity


def test_a_line_longer_than_the_limit_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "READ_BLOCK", 16)
    monkeypatch.setattr(sources, "MAX_LINE", 100)
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


def test_columns_are_renamed_and_selected_by_their_contract_names(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("备注,车牌号,定位时间,经度,纬度\nx,京A1,t,1,2\n", encoding="utf-8")
    batches, _ = read_batches(f, ["vehicle_id", "ts", "lon", "lat", "speed_kmh"])
    (table,) = [b.table for b in batches]
    assert table.column_names == ["vehicle_id", "ts", "lon", "lat"]
    opts = SourceOptions(columns={"备注": "vehicle_id"})
    (table,) = [b.table for b in read_batches(f, ["vehicle_id", "ts"], options=opts)[0]]
    assert table.to_pylist() == [{"vehicle_id": "x", "ts": "t"}]
    with pytest.raises(InputError, match=re.escape(f"{f}: the column mapping 车辆ID=vehicle_id names a column")):
        list(read_batches(f, options=SourceOptions(columns={"车辆ID": "vehicle_id"}))[0])


def test_parquet_columns_are_renamed_in_the_query(tmp_path: Path) -> None:
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"车辆ID": ["a"], "GPS时间": [1], '经"度': [116.3], "纬度": [39.9], "x": [0]}), f)
    opts = SourceOptions(columns={'经"度': "lon"})
    (table,) = [b.table for b in read_batches(f, ["vehicle_id", "ts", "lon", "lat"], options=opts)[0]]
    assert table.to_pylist() == [{"vehicle_id": "a", "ts": 1, "lon": 116.3, "lat": 39.9}]
    assert mapped_names(f, opts) == {"车辆ID": "vehicle_id", "GPS时间": "ts", '经"度': "lon", "纬度": "lat"}
    # No column asked for exists: every column is read, so that the caller can say what the file has.
    (table,) = [b.table for b in read_batches(f, ["odometer_km"], options=opts)[0]]
    assert table.column_names == ["vehicle_id", "ts", "lon", "lat", "x"]


def test_read_table_maps_columns_only_when_told_the_kind(tmp_path: Path) -> None:
    f = tmp_path / "vehicles.csv"
    f.write_bytes("车辆编号,车牌号,排放标准\n1,京A11111,国五\n".encode("gbk"))
    assert read_table(f, "vehicles").column_names == ["车辆编号", "车牌号", "排放标准"]
    table = read_table(f, "vehicles", options=SourceOptions(kind="vehicles"))
    assert table.to_pylist() == [{"vehicle_id": "1", "plate": "京A11111", "emission_standard": "国五"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'1,"A,5\n2,B,5\n', "line 2 (data row 1) has an unterminated quote ('1,\"A,5')"),
        (b"1,A,5\n2,B\n", "line 3 (data row 2) has the wrong number of fields ('2,B')"),
    ],
)
def test_read_table_refuses_lines_that_are_not_rows(tmp_path: Path, body: bytes, message: str) -> None:
    f = tmp_path / "vehicles.csv"
    f.write_bytes(b"vehicle_id,plate,weight\n" + body)
    with pytest.raises(InputError, match=re.escape(f"{f}: {message}")):
        read_table(f, "vehicles")


@pytest.mark.parametrize("seed", range(40))
def test_no_input_gives_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Random bytes (and random damage to a good file) give rows or an InputError, never another error."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(sources, "READ_BLOCK", int(rng.integers(5, 200)))
    good = _zh_text().encode(["utf-8", "gbk"][seed % 2]) * 20
    data = bytearray(good)
    for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))).tolist():
        data[pos] = int(rng.integers(0, 256))
    if seed % 5 == 0:
        data = bytearray(rng.integers(0, 256, size=500, dtype=np.uint8).tobytes())
    name = ["p.csv", "p.csv.gz"][seed % 3 == 0]
    f = tmp_path / name
    f.write_bytes(gzip.compress(bytes(data)) if name.endswith(".gz") else bytes(data))
    try:
        _read(f)
        read_table(f, "vehicles")
    except InputError as exc:
        assert str(exc).startswith((str(f), "vehicles: "))


def test_the_pipeline_quarantines_each_line_with_its_own_reason(tmp_path: Path) -> None:
    from truckcarbon.pipeline import run_pipeline

    pings = tmp_path / "pings.csv.gz"
    text = (
        "车辆ID,GPS时间,经度,纬度,速度\n"
        "1,2022-03-01 08:00:00,116.30,39.90,60\n"
        '1,2022-03-01 08:00:30,"116.306,39.90,60\n'  # data row 2: unterminated quote
        "1,2022-03-01 08:01:00,116.312,39.90,60,EXTRA\n"  # data row 3: wrong number of fields
        "1,2022-03-01 08:01:30,east,39.90,60\n"  # data row 4: a bad value
        "1,2022-03-01 08:02:00,116.318,39.90,60\n"
    )
    pings.write_bytes(gzip.compress(text.encode("gbk")))
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text("vehicle_id,plate,emission_standard\n1,京A11111,China V\n", encoding="utf-8")
    summary = run_pipeline(pings, vehicles, tmp_path / "run")
    parts = sorted((tmp_path / "run" / "quarantine" / "pings").glob("*.parquet"))
    q = [r for part in parts for r in pq.read_table(part).to_pylist()]  # (lines and rows: other columns)
    assert sorted((r["source_row"], r["reason"]) for r in q) == [
        (2, "unterminated_quote"),
        (3, "malformed_line"),
        (4, "bad_coordinates"),
    ]
    raw = {r["source_row"]: r["raw_line"] for r in q if r["reason"] in ("unterminated_quote", "malformed_line")}
    assert raw == {2: '1,2022-03-01 08:00:30,"116.306,39.90,60', 3: "1,2022-03-01 08:01:00,116.312,39.90,60,EXTRA"}
    counts = summary.quality["pings"]["quarantined"]
    assert counts["unterminated_quote"] == 1 and counts["malformed_line"] == 1
    assert summary.pings_kept == 2 and summary.pings_quarantined == 3


def test_the_row_map_keeps_only_the_skipped_rows_not_yet_passed() -> None:
    rng = np.random.default_rng(7)
    skipped = np.sort(rng.choice(np.arange(1, 20_001), size=4000, replace=False))
    kept = np.setdiff1d(np.arange(1, 20_001), skipped)
    row_map = sources._RowMap()
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
    assert sources._RowMap().rows(0, 5) is None
