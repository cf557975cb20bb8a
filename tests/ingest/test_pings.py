"""Validation of ping batches (the general path): normalised valid rows, traced quarantine, clear file-level
errors."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.pings import validate_pings

CSV = """vehicle_id,ts,lon,lat,speed_kmh,load_state
1,2022-01-31 23:50:00,116.30,39.90,50,full
1,1643645400,116.40,39.91,55,Half
2,,116.40,39.91,55,empty
x7,2022-02-01 00:10:00,116.40,39.91,55,empty
3,2022-02-01 00:10:00,east,39.91,55,empty
3,2022-02-01 00:11:00,0,0,55,empty
3,2022-02-01 00:12:00,116.5,95,55,empty
3,2022-02-01 00:13:00,116.5,39.9,999,empty
3,2022-02-01 00:14:00,116.5,39.9,30,overloaded
3,2022-02-01T00:15:00+08:00,116.5,39.9,,
"""


def test_valid_rows_are_normalised_and_bad_rows_traced():
    table = pacsv.read_csv(
        io.BytesIO(CSV.encode()),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state")}
        ),
    )
    valid, quarantine, counts = validate_pings(table, "pings.csv", first_row=100)
    assert counts.rows == 10 and counts.kept == 4
    assert counts.quarantined == {
        "missing_vehicle_id": 0,
        "bad_time": 1,
        "time_out_of_range": 0,
        "bad_coordinates": 2,
        "zero_fix": 1,
        "bad_optional_value": 2,
        "duplicate_vehicle_id": 0,
        "unknown_vehicle": 0,
    }
    assert valid["vehicle_id"].to_pylist() == ["1", "1", "x7", "3"]  # a text id is an id
    assert str(valid.schema.field("ts").type) == "timestamp[ms, tz=UTC]"
    # Local 2022-01-31 23:50 (GMT+8) is epoch 1643644200 s; epoch seconds as text and an
    # explicit offset are honoured (00:10 and 00:15 local on 2022-02-01).
    ms = valid["ts"].cast(pa.int64()).to_pylist()
    assert ms == [1643644200 * 1000, 1643645400 * 1000, 1643645400 * 1000, 1643645700 * 1000]
    assert valid["load_state"].to_pylist() == ["full", "half", "empty", None]
    assert valid["speed_kmh"].to_pylist()[3] is None
    assert quarantine.num_rows == 6
    assert quarantine["source_row"].to_pylist() == [103, 105, 106, 107, 108, 109]
    assert set(quarantine["source_file"].to_pylist()) == {"pings.csv"}
    assert quarantine.filter(pa.compute.equal(quarantine["reason"], "bad_coordinates"))["lon"].to_pylist() == [
        "east",
        "116.5",
    ]


def test_typed_input_and_missing_columns():
    t = pa.table(
        {
            "vehicle_id": [5],
            "ts": pa.array([1_650_000_000_000]).cast(pa.timestamp("ms", tz="UTC")),
            "lon": [113.0],
            "lat": [34.7],
        }
    )
    valid, quarantine, counts = validate_pings(t, "p.parquet")
    assert counts.kept == 1 and quarantine.num_rows == 0
    assert valid["ts"].cast(pa.int64()).to_pylist() == [1_650_000_000_000]
    with pytest.raises(InputError, match=r"p\.parquet: missing column\(s\) lat"):
        validate_pings(t.drop(["lat"]), "p.parquet")


def test_swapped_axes_refuse_the_file_and_a_wrong_id_column_is_named():
    t = pa.table({"vehicle_id": ["a"] * 3, "ts": ["2022-03-10 08:00:00"] * 3, "lon": [39.9] * 3, "lat": [116.4] * 3})
    with pytest.raises(InputError, match=r"p\.csv: column lat looks like a longitude"):
        validate_pings(t, "p.csv")
    t = t.set_column(0, "vehicle_id", pa.array([1.5, 2.5, 3.5]))
    with pytest.raises(InputError, match=r"p\.csv: column vehicle_id is a double column"):
        validate_pings(
            t.set_column(2, "lon", pa.array([116.4] * 3)).set_column(3, "lat", pa.array([39.9] * 3)), "p.csv"
        )
