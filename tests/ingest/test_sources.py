"""Reading a file as batches: columns renamed to and selected by the contract names (CSV and Parquet),
whole small tables, lines that are not rows, and never a traceback on damaged input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest import csvstream
from truckcarbon.ingest.sources import SourceOptions, column_names, mapped_names, read_batches, read_table

from .csvdata import read_rows, zh_text


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
    monkeypatch.setattr(csvstream, "READ_BLOCK", int(rng.integers(5, 200)))
    good = zh_text().encode(["utf-8", "gbk"][seed % 2]) * 20
    data = bytearray(good)
    for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))).tolist():
        data[pos] = int(rng.integers(0, 256))
    if seed % 5 == 0:
        data = bytearray(rng.integers(0, 256, size=500, dtype=np.uint8).tobytes())
    name = ["p.csv", "p.csv.gz"][seed % 3 == 0]
    f = tmp_path / name
    f.write_bytes(gzip.compress(bytes(data)) if name.endswith(".gz") else bytes(data))
    try:
        read_rows(f)
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


def test_column_names_are_the_files_own(tmp_path: Path) -> None:
    c = tmp_path / "p.csv"
    c.write_bytes("车辆ID,GPS时间\n1,2\n".encode("gbk"))
    assert column_names(c) == ["车辆ID", "GPS时间"]
    p = tmp_path / "p.parquet"
    pq.write_table(pa.table({"b": [1], "a": [2]}), p)
    assert column_names(p) == ["b", "a"]
    p.write_bytes(b"")
    with pytest.raises(InputError, match=re.escape(f"{p}: empty file (0 bytes)")):
        column_names(p)


def test_read_table_refuses_a_folder_of_files_and_an_empty_table(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("vehicle_id\n1\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"vehicles: {tmp_path} holds 2 files; give one file")):
        read_table(tmp_path, "vehicles")
    (tmp_path / "b.csv").write_text("vehicle_id\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"vehicles: {tmp_path / 'b.csv'} has no rows")):
        read_table(tmp_path / "b.csv", "vehicles")
