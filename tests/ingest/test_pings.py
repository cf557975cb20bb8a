"""Validation of ping batches: normalised valid rows, traced quarantine, clear file-level errors."""

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


@pytest.mark.parametrize(
    "ts_type",
    [
        pa.timestamp("ms", tz="UTC"),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ns", tz="UTC"),
        pa.timestamp("ns", tz="Asia/Shanghai"),
        pa.timestamp("s"),
        pa.int64(),
        "ms",
    ],
)
@pytest.mark.parametrize("speed_type", [pa.float64(), pa.float32()])
def test_typed_rules_agree_with_the_general_rules(ts_type: pa.DataType | str, speed_type: pa.DataType) -> None:
    """validate_typed (compiled, typed columns) against validate_pings (the general path) on the same rows:
    the same reasons, times, coordinates and channels, whatever the timestamp type and column widths."""
    import numpy as np

    from truckcarbon.ingest.ids import VehicleIds
    from truckcarbon.ingest.pings import REASONS, typed_plan, validate_typed

    rng = np.random.default_rng(3)
    n = 4000
    seconds = 1_650_000_000 + np.sort(rng.integers(0, 86400 * 60, n))
    seconds[rng.choice(n, 40, replace=False)] = 900_000_000  # 1998: before the plausible window

    def sometimes(values: np.ndarray, rate: float, bad: object) -> list[object]:
        out = values.tolist()
        for i in np.flatnonzero(rng.random(n) < rate):
            out[i] = bad
        return out

    states = np.array(["empty", "half", "full", "FULL", " ", "loaded", "Half"])
    if ts_type == "ms":  # integer epoch milliseconds
        ts = pa.array(sometimes(seconds * 1000, 0.01, None), pa.int64())
    elif isinstance(ts_type, pa.TimestampType):
        scale = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[ts_type.unit]
        fraction = rng.integers(0, scale, n)  # parts of a second, cut off
        ts = pa.array(sometimes(seconds * scale + fraction, 0.01, None), pa.int64()).cast(ts_type)
    else:
        ts = pa.array(sometimes(seconds, 0.01, None), ts_type)
    lon = sometimes(rng.uniform(100, 120, n).astype(np.float32), 0.01, float("nan"))
    lat = sometimes(rng.uniform(20, 95, n), 0.01, None)
    for i in rng.choice(n, 30, replace=False):  # (0, 0) fixes
        lon[i], lat[i] = 0.0, 0.0
    speeds = sometimes(rng.uniform(-5, 260, n), 0.02, None)
    # the range's edges in either width: NaN, infinities, -0, 250 and the next float32 above it
    edges = [
        float("nan"),
        float("inf"),
        -float("inf"),
        -0.0,
        250.0,
        float(np.nextafter(np.float32(250), np.float32(300))),
    ]
    speeds[10 : 10 + len(edges)] = edges
    table = pa.table(
        {
            "vehicle_id": pa.array(sometimes(rng.integers(1, 7, n), 0.01, None), pa.int32()),
            "ts": ts,
            "lon": pa.array(lon, pa.float32()),
            "lat": pa.array(lat),
            "speed_kmh": pa.array(speeds, speed_type),
            "load_state": pa.array(sometimes(states[rng.integers(0, states.size, n)], 0.05, None)).dictionary_encode(),
            "fuel_level_l": pa.array(sometimes(rng.uniform(-1, 600, n).astype(np.float32), 0.05, None), pa.float32()),
            "odometer_km": pa.array(sometimes(rng.uniform(-1, 9e5, n), 0.05, float("nan"))),
        }
    )
    # vehicle 5 is given twice with different attributes, vehicle 6 is unknown
    ids = VehicleIds.build(pa.array(["1", "2", "3", "4"]), pa.array(["5"]))
    plan = typed_plan(table.schema)
    assert plan is not None
    columns, reason, counts = validate_typed(table.to_batches()[0], plan, ids)
    valid, quarantine, want = validate_pings(table, "p.parquet", 0, ids)
    expected = np.full(n, -1)
    expected[np.asarray(quarantine["source_row"]) - 1] = [REASONS.index(r) for r in quarantine["reason"].to_pylist()]
    assert np.array_equal(reason, expected)
    assert counts.tolist() == [want.quarantined[name] for name in REASONS]
    assert 0 < counts.sum() < 0.6 * n and all(counts > 0)
    kept = reason < 0
    vid, t, lon, lat, speed, load, fuel, odometer = (np.asarray(c) for c in columns)
    assert np.array_equal(vid[kept], valid["vehicle_key"].to_numpy())
    assert valid["vehicle_id"].to_pylist() == [str(k + 1) for k in vid[kept]]
    assert np.array_equal(t[kept], valid["ts"].cast(pa.int64()).to_numpy() // 1000)
    assert np.array_equal(lon[kept], valid["lon"].to_numpy()) and np.array_equal(lat[kept], valid["lat"].to_numpy())
    assert np.array_equal(speed[kept], valid["speed_kmh"].fill_null(0).to_numpy())
    assert np.array_equal(load[kept], valid["load_state"].combine_chunks().indices.fill_null(-1).to_numpy())
    for got, name in ((fuel, "fuel_level_l"), (odometer, "odometer_km")):
        assert np.array_equal(got[kept], valid[name].to_numpy(zero_copy_only=False), equal_nan=True)
