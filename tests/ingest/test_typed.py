"""The typed fast path: plans for typed files, and the compiled rules against the general ones."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.months import LOCAL_OFFSET_S
from truckcarbon.core.schemas import PINGS
from truckcarbon.ingest.ids import CONFLICTING, UNKNOWN, VehicleIds
from truckcarbon.ingest.pings import validate_pings
from truckcarbon.ingest.quarantine import REASONS
from truckcarbon.ingest.typed import (
    ID_INTEGER,
    ID_TEXT,
    KERNEL_COLUMNS,
    KERNEL_SOURCES,
    PING_COLUMNS,
    TS_INTEGER,
    TS_TIMESTAMP,
    typed_plan,
    validate_typed,
)


def test_the_kernel_columns_come_from_every_pings_column_once() -> None:
    assert sorted(PING_COLUMNS) == sorted(PINGS.names)
    assert KERNEL_COLUMNS[:4] == ("vehicle_id", "t", "lon", "lat") and len(set(KERNEL_COLUMNS)) == len(PINGS.names)
    assert KERNEL_SOURCES["t"] == "ts" and KERNEL_SOURCES["speed"] == "speed_kmh"


def test_typed_plans_by_column_types() -> None:
    base = {"vehicle_id": pa.int64(), "ts": pa.timestamp("us"), "lon": pa.float64(), "lat": pa.float32()}
    plan = typed_plan(pa.schema(base))
    assert plan is not None
    assert plan.columns == ("vehicle_id", "ts", "lon", "lat") and plan.id_kind == ID_INTEGER
    # microseconds as they are; a naive timestamp is local time (GMT+8), shifted back to UTC
    assert (plan.ts_kind, plan.ts_mul, plan.ts_div, plan.ts_shift_us) == (TS_TIMESTAMP, 1, 1, LOCAL_OFFSET_S * 10**6)
    plan = typed_plan(pa.schema({**base, "ts": pa.timestamp("ns", tz="UTC"), "vehicle_id": pa.string()}))
    assert plan is not None and (plan.ts_mul, plan.ts_div, plan.ts_shift_us) == (1, 1000, 0)
    assert plan.id_kind == ID_TEXT and plan.read_dictionary == ("vehicle_id",)
    plan = typed_plan(pa.schema({**base, "ts": pa.int64(), "load_state": pa.string(), "odometer_km": pa.int32()}))
    assert plan is not None and plan.ts_kind == TS_INTEGER and plan.read_dictionary == ("load_state",)
    assert plan.columns == ("vehicle_id", "ts", "lon", "lat", "load_state", "odometer_km")
    # Text where a number is expected, a float or uint64 id, a missing column: the general path.
    for change in ({"lon": pa.string()}, {"vehicle_id": pa.float64()}, {"vehicle_id": pa.uint64()},
                   {"ts": pa.string()}, {"speed_kmh": pa.string()}, {"load_state": pa.int8()}):  # fmt: skip
        assert typed_plan(pa.schema({**base, **change})) is None, change
    assert typed_plan(pa.schema({k: v for k, v in base.items() if k != "lat"})) is None


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
            "acc_on": pa.array(sometimes(rng.random(n) < 0.7, 0.05, None), pa.bool_()),
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
    vid, t, lon, lat, speed, load, fuel, odometer, acc = (np.asarray(c) for c in columns)
    assert np.array_equal(vid[kept], valid["vehicle_key"].to_numpy())
    assert valid["vehicle_id"].to_pylist() == [str(k + 1) for k in vid[kept]]
    assert np.array_equal(t[kept], valid["ts"].cast(pa.int64()).to_numpy() // 1000)
    assert np.array_equal(lon[kept], valid["lon"].to_numpy()) and np.array_equal(lat[kept], valid["lat"].to_numpy())
    assert np.array_equal(speed[kept], valid["speed_kmh"].fill_null(0).to_numpy())
    assert np.array_equal(load[kept], valid["load_state"].combine_chunks().indices.fill_null(-1).to_numpy())
    assert np.array_equal(acc[kept], valid["acc_on"].cast(pa.int8()).fill_null(-1).to_numpy())
    assert {-1, 0, 1} <= set(acc[kept].tolist())
    for got, name in ((fuel, "fuel_level_l"), (odometer, "odometer_km")):
        assert np.array_equal(got[kept], valid[name].to_numpy(zero_copy_only=False), equal_nan=True)


@pytest.mark.parametrize("spread", [1, 10**12])
def test_interleaved_integer_ids_get_the_keys_of_the_binary_search(spread: int) -> None:
    """Ids of many vehicles interleaved row by row (a time-ordered dump): dense ids through the table, sparse
    ones (phone-number-like) through the binary search, both the keys ``VehicleIds.keys`` gives; conflicting,
    unknown, out-of-range and negative ids included."""
    rng = np.random.default_rng(4)
    known = (np.arange(-50, 950) * spread).astype(np.int64)
    conflicting = np.array([known[3], known[-1] + spread, -(2**62)], np.int64)  # inside, above and far below
    ids = VehicleIds.build(pa.array([str(v) for v in known if v not in conflicting]),
                           pa.array([str(v) for v in conflicting]))  # fmt: skip
    assert (ids.dense.size > 0) == (spread == 1)
    pool = np.concatenate([known, conflicting, known[:20] + 7 * spread + 3, [2**63 - 1, -(2**63)]])
    n = 20_000
    vid = pool[rng.integers(0, pool.size, n)]
    table = pa.table({
        "vehicle_id": pa.array(vid, pa.int64()),
        "ts": pa.array(np.full(n, 1_650_000_000), pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        "lon": pa.array(np.full(n, 113.0)), "lat": pa.array(np.full(n, 30.0)),
    })  # fmt: skip
    plan = typed_plan(table.schema)
    assert plan is not None
    columns, reason, _ = validate_typed(table.to_batches()[0], plan, ids)
    want = ids.keys(pa.array(vid))
    got = np.asarray(columns[0])
    assert np.array_equal(got[want >= 0], want[want >= 0])
    assert np.array_equal(reason == REASONS.index("duplicate_vehicle_id"), want == CONFLICTING)
    assert np.array_equal(reason == REASONS.index("unknown_vehicle"), want == UNKNOWN)
    assert (want == CONFLICTING).sum() > 0 and (want == UNKNOWN).sum() > 0
