"""The tables a run writes: the inventory query against sums done by hand, the declared columns and types,
the quarantine's numbered files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.schemas import ACTIVITY, INVENTORY, RUN_VEHICLES, UNOBSERVED
from truckcarbon.geo.reference import cities
from truckcarbon.pipeline.outputs import INVENTORY_KEYS, INVENTORY_MEASURES, inventory_sql, quarantine_writer

# Activity spill rows: (vehicle_key, month, city, registration city, standard, weight, km, fuel_l, co2_kg).
SPILL = [
    (0, "2022-03", 110100, 110100, "China V", 2.0, 10.0, 3.0, 8.0),
    (0, "2022-03", 130200, 110100, "China V", 2.0, 5.0, 1.5, 4.0),
    (0, "2022-03", 0, 110100, "China V", 2.0, 7.0, 2.0, 5.0),  # outside the mainland: in no view
    (1, "2022-03", 110100, 130200, "China VI", 1.0, 20.0, 6.0, 16.0),
    (1, "2022-04", 110100, 130200, "China VI", 1.0, 99.0, 9.0, 99.0),  # another month
]


def _connection() -> duckdb.DuckDBPyConnection:
    names = ["vehicle_key", "month", "city_adcode", "registration_city_adcode", "emission_standard", "weight"]
    names += ["distance_km", "fuel_l", "co2_kg"]
    spill = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in SPILL])
    spill = spill.append_column("method", pa.array(["unknown_load"] * spill.num_rows))
    # The other measures as multiples of km, fuel and CO2, so that their sums follow from the hand sums below.
    km, fuel, co2 = (np.array(spill[c].to_pylist()) for c in ("distance_km", "fuel_l", "co2_kg"))
    extra = {"idle_h": km / 10, "fuel_l_report": fuel, "fuel_l_copert": 2 * fuel, "fuel_l_measured": 3 * fuel}
    extra |= {"nox_kg": co2, "pm25_kg": co2 / 2, "co_kg": co2 / 4, "hc_kg": co2 / 8}
    extra |= {"diesel_l": fuel / 2, "gas_kg": fuel / 4, "electricity_kwh": 4 * fuel, "hydrogen_kg": fuel / 8}
    for name, values in extra.items():
        spill = spill.append_column(name, pa.array(values))
    spill = spill.set_column(2, "city_adcode", spill["city_adcode"].cast(pa.int32()))
    con = duckdb.connect()
    con.register("spill", spill)
    con.register("cities_arrow", cities().select(["city_adcode", "province_adcode"]))
    con.execute("CREATE TABLE cities AS SELECT * FROM cities_arrow")
    return con


def test_the_inventory_columns_are_the_declared_ones_keys_then_measures() -> None:
    assert INVENTORY_KEYS + tuple(INVENTORY_MEASURES) == INVENTORY.names


def test_the_inventory_query_sums_each_view_as_done_by_hand() -> None:
    table = _connection().sql(inventory_sql("spill", "2022-03")).to_arrow_table()
    assert tuple(table.column_names) == INVENTORY.names
    assert set(table["month"].to_pylist()) == {"2022-03"} and set(table["method"].to_pylist()) == {"unknown_load"}
    rows = [tuple(r.values()) for r in table.drop_columns(["month", "method"]).to_pylist()]
    # (view, city, province, standard, vehicles, weighted vehicles, km, km unweighted, fuel, co2 t, co2 t
    # unweighted): km, fuel and CO2 weighted by the vehicle's weight; the row outside the mainland in no view.
    expected = [
        ("operating", 110100, 110000, "China V", 1, 2.0, 20.0, 10.0, 6.0, 0.016, 0.008),
        ("operating", 110100, 110000, "China VI", 1, 1.0, 20.0, 20.0, 6.0, 0.016, 0.016),
        ("operating", 130200, 130000, "China V", 1, 2.0, 10.0, 5.0, 3.0, 0.008, 0.004),
        ("registration", 110100, 110000, "China V", 1, 2.0, 30.0, 15.0, 9.0, 0.024, 0.012),
        ("registration", 130200, 130000, "China VI", 1, 1.0, 20.0, 20.0, 6.0, 0.016, 0.016),
    ]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        km, fuel, co2 = want[6], want[8], want[9]
        derived = (km / 10, fuel, 2 * fuel, 3 * fuel, co2, co2 / 2, co2 / 4, co2 / 8, fuel / 2, fuel / 4, 4 * fuel,
                   fuel / 8)  # fmt: skip
        assert got[:5] == want[:5] and got[5:] == pytest.approx(want[5:] + derived, rel=1e-12)
    every = _connection().sql(inventory_sql("spill")).to_arrow_table()
    assert set(every["month"].to_pylist()) == {"2022-03", "2022-04"}


def test_a_run_writes_the_declared_tables(full_run: Path) -> None:
    """The outputs of a run (on each engine) have the columns and types the schema module declares, in order."""
    for name, schema in (("inventory", INVENTORY), ("activity", ACTIVITY), ("unobserved", UNOBSERVED)):
        f = sorted((full_run / name).glob("*.parquet"))[0]
        got = pq.read_schema(f)
        assert tuple(got.names) == schema.names, name
        assert [fld.type for fld in got] == [c.type for c in schema.columns], name
    con = duckdb.connect(str(full_run / "truckcarbon.duckdb"), read_only=True)
    names = [r[0] for r in con.execute("DESCRIBE vehicles").fetchall()]
    assert tuple(names) == RUN_VEHICLES.names
    for name in ("inventory", "activity"):
        (n,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()  # type: ignore[misc]
        assert n == pq.read_table(full_run / name).num_rows


def test_the_quarantine_is_numbered_files_and_an_empty_table_writes_none(tmp_path: Path) -> None:
    write = quarantine_writer(tmp_path / "q")
    schema = pa.schema([("reason", pa.string())])
    write(schema.empty_table())
    assert not (tmp_path / "q").exists()
    write(pa.table({"reason": ["zero_fix"]}, schema=schema))
    write(pa.table({"reason": ["bad_time", "bad_time"]}, schema=schema))
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert pq.read_table(tmp_path / "q")["reason"].to_pylist() == ["zero_fix", "bad_time", "bad_time"]
