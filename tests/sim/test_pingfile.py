"""The ping file format: partitions, Parquet layout, text ids, part files of bounded size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from truckcarbon.sim.pingfile import PING_SCHEMA, PartBuffer, PartWriter, month_folder, text_ids, write_pings
from truckcarbon.sim.run import simulate

from .worlds import SMALL


def test_ping_file_layout(tmp_path, clean_run):
    """Columns that are never null are REQUIRED; ids and times delta-encoded; a channel left out is nulls."""
    f = next((clean_run / "pings").glob("*/*.parquet"))
    meta = pq.ParquetFile(f)
    rg = meta.metadata.row_group(0)
    column = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    for name in ("vehicle_id", "ts"):
        assert "DELTA_BINARY_PACKED" in column[name].encodings and column[name].compression == "UNCOMPRESSED"
    assert column["speed_kmh"].compression.startswith("LZ4")
    assert all(meta.schema.column(i).max_definition_level == 0 for i in range(rg.num_columns))
    out = tmp_path / "no-fuel"
    simulate(out, replace(SMALL, end_month="2021-12", fuel_channel=False))
    g = next((out / "pings").glob("*/*.parquet"))
    table, schema = pq.read_table(g), pq.ParquetFile(g).schema
    assert table["fuel_level_l"].null_count == table.num_rows > 0
    assert schema.column(schema.names.index("fuel_level_l")).max_definition_level == 1
    assert schema.column(schema.names.index("odometer_km")).max_definition_level == 0


def test_partitions_are_local_months():
    assert month_folder(Path("w"), 2022 * 12) == Path("w/pings/month=2022-01")
    assert month_folder(Path("w"), 2019 * 12 + 11) == Path("w/pings/month=2019-12")


def test_text_ids():
    table = pa.table({"vehicle_id": pa.array([3, 3, 12], pa.int64()), "x": [1.0, 2.0, 3.0]})
    plain = text_ids(table, "0139{:08d}")
    assert plain["vehicle_id"].to_pylist() == ["013900000003", "013900000003", "013900000012"]
    assert plain.schema.field("vehicle_id").type == pa.string() and not plain.schema.field("vehicle_id").nullable
    coded = text_ids(table, "T{}", dictionary=True)
    assert pa.types.is_dictionary(coded.schema.field("vehicle_id").type)
    assert coded["vehicle_id"].combine_chunks().dictionary.to_pylist() == ["T3", "T12"]
    assert coded["x"].equals(table["x"])
    empty = text_ids(table.slice(0, 0), "T{}")
    assert empty.num_rows == 0 and empty.schema.field("vehicle_id").type == pa.string()


def _fixes(n: int, t0: int = 1_650_000_000) -> tuple[np.ndarray, ...]:
    t = t0 + 30 * np.arange(n, dtype=np.int64)
    return (
        t,
        np.linspace(116.0, 116.1, n),
        np.linspace(39.0, 39.1, n),
        np.full(n, 50.0, np.float32),
        (np.arange(n) % 3).astype(np.int8),
        np.arange(n, dtype=np.float64),
        np.full(n, 300.0, np.float32),
        np.arange(n) % 4 != 0,  # ignition off every fourth fix
    )


def test_parts_hold_whole_trucks_and_close_once_full(tmp_path):
    """A part closes after the truck that filled it; the emitted rows are gathered in file order."""
    PartBuffer.release()
    writer = PartWriter(tmp_path, 7, 8, (), "")
    writer.add(1, np.arange(5), _fixes(5))
    assert not list(tmp_path.iterdir())  # 5 rows of 8: still open
    writer.add(2, np.array([0, 1, 1, 3]), _fixes(4))  # a duplicate of row 1; row 2 not emitted
    assert [p.name for p in tmp_path.iterdir()] == ["part-007-00000.parquet"]
    writer.add(3, np.array([1, 0]), _fixes(2))  # out of order
    writer.flush()
    writer.flush()  # nothing left: no empty part
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-007-00000.parquet", "part-007-00001.parquet"]
    first = pq.read_table(tmp_path / "part-007-00000.parquet")
    assert first.schema.names == PING_SCHEMA.names
    assert first["vehicle_id"].to_pylist() == [1] * 5 + [2] * 4
    ts = first["ts"].cast(pa.int64()).to_pylist()
    t0 = 1_650_000_000_000
    assert ts[5:] == [t0, t0 + 30_000, t0 + 30_000, t0 + 90_000]  # seconds written as milliseconds
    assert first["load_state"].to_pylist()[:5] == ["empty", "half", "full", "empty", "half"]
    assert first["odometer_km"].to_pylist()[5:] == [0.0, 1.0, 1.0, 3.0]
    assert first["acc_on"].to_pylist() == [False, True, True, True, False, False, True, True, True]
    second = pq.read_table(tmp_path / "part-007-00001.parquet")
    assert second["vehicle_id"].to_pylist() == [3, 3] and second["lon"].to_pylist() == [116.1, 116.0]
    PartBuffer.release()


def test_channels_left_out_are_nulls_and_text_ids_are_dictionary_pages(tmp_path):
    PartBuffer.release()
    writer = PartWriter(tmp_path, 0, 100, ("load_state", "fuel_level_l"), "0139{:08d}")
    writer.add(5, np.arange(3), _fixes(3))
    writer.flush()
    path = tmp_path / "part-000-00000.parquet"
    table = pq.read_table(path)
    assert table["load_state"].null_count == 3 and table["fuel_level_l"].null_count == 3
    assert table["odometer_km"].to_pylist() == [0.0, 1.0, 2.0]
    assert table["vehicle_id"].combine_chunks().dictionary_decode().to_pylist() == ["013900000005"] * 3
    rg = pq.ParquetFile(path).metadata.row_group(0)
    ids = next(rg.column(i) for i in range(rg.num_columns) if rg.column(i).path_in_schema == "vehicle_id")
    assert "DELTA_BINARY_PACKED" not in ids.encodings and any("DICTIONARY" in e for e in ids.encodings)
    PartBuffer.release()


def test_write_pings_makes_complete_channels_required(tmp_path):
    n = 4
    columns = _fixes(n)
    table = pa.table(
        {
            "vehicle_id": pa.array(np.ones(n, np.int64)),
            "ts": pa.array(columns[0] * 1000).cast(pa.timestamp("ms", tz="UTC")),
            "lon": columns[1],
            "lat": columns[2],
            "speed_kmh": columns[3],
            "load_state": pa.DictionaryArray.from_arrays(pa.array(columns[4]), pa.array(["empty", "half", "full"])),
            "odometer_km": pa.array([0.0, None, 2.0, 3.0]),
            "fuel_level_l": columns[6],
            "acc_on": pa.array([True, None, False, True]),
        }
    ).cast(PING_SCHEMA)
    write_pings(table, tmp_path / "p.parquet")
    schema = pq.ParquetFile(tmp_path / "p.parquet").schema
    level = {schema.column(i).name: schema.column(i).max_definition_level for i in range(len(schema.names))}
    assert level["odometer_km"] == 1 and level["fuel_level_l"] == 0 and level["load_state"] == 0
    assert level["acc_on"] == 1
    assert pq.read_table(tmp_path / "p.parquet").equals(table.cast(pq.read_schema(tmp_path / "p.parquet")))
