"""The tables a run writes from its activity spill: activity, inventory and unobserved per month, the quarantine
and the DuckDB file.

Every engine leaves its activity rows (with the emission method and vehicle
attributes) in the run's spill folder; :func:`write_outputs` turns them into the
monthly files of the run folder, each written atomically, then rebuilds
``truckcarbon.duckdb`` and moves the run's quarantine in. The inventory is
aggregated by :func:`inventory_sql`, one query whose columns are those of
:data:`~truckcarbon.core.schemas.INVENTORY`: DuckDB runs it here (sums in a fixed
order, so reruns agree to the last bit), for either engine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.faults import fault_point
from truckcarbon.core.files import atomic_path
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.schemas import ACTIVITY, INVENTORY, UNOBSERVED
from truckcarbon.emissions.fuels import ENERGY_COLUMNS
from truckcarbon.geo.reference import cities

# How each measure of INVENTORY sums the rows of one (month, view, city, standard, method) cell: one row per
# vehicle, with its km, fuel and co2 there and its weight. ``{o}`` is the order of the sum (DuckDB: by vehicle).
# The other columns of INVENTORY are the cell's keys.
INVENTORY_MEASURES = {
    "vehicles": "count(*)",
    "vehicles_weighted": "sum(weight{o})",
    "distance_km": "sum(km * weight{o})",
    "distance_km_unweighted": "sum(km{o})",
    "fuel_l": "sum(fuel * weight{o})",
    "co2_t": "sum(co2 * weight{o}) / 1000",
    "co2_t_unweighted": "sum(co2{o}) / 1000",
    "idle_h": "sum(idle * weight{o})",
    **{f"fuel_l_{m}": f"sum(fuel_{m} * weight{{o}})" for m in ("report", "copert", "measured")},
    **{f"{p}_t": f"sum({p} * weight{{o}}) / 1000" for p in ("nox", "pm25", "co", "hc")},
    **{e: f"sum({e} * weight{{o}})" for e in ENERGY_COLUMNS},
}
INVENTORY_KEYS = tuple(name for name in INVENTORY.names if name not in INVENTORY_MEASURES)
# The two views of a vehicle's km: where it drove, where it is registered.
VIEWS = (("operating", "city_adcode"), ("registration", "registration_city_adcode"))


def quarantine_writer(path: Path) -> Callable[[pa.Table], None]:
    """Append quarantine tables as numbered Parquet files under ``path``."""
    count = [0]

    def write(table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / f"part-{count[0]:05d}.parquet") as tmp:
            pq.write_table(table, tmp)
        count[0] += 1

    return write


def sql_str(path: Path) -> str:
    """``path`` as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _copy_parquet(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd)")


def inventory_sql(activity: str, month: str | None = None) -> str:
    """The operating and registration inventories (:data:`INVENTORY`'s columns) of the activity rows of
    ``activity`` (a table expression: a view, ``read_parquet(...)``), of ``month`` or every month; joins
    the table ``cities`` (city_adcode, province_adcode).

    Sums run in a fixed order (ORDER BY inside the aggregate): floating-point addition is not associative,
    and a parallel aggregation would otherwise make reruns differ in the last bits.
    """
    by_city, by_vehicle = " ORDER BY city_adcode", " ORDER BY vehicle_key"
    where = "city_adcode <> 0" + (f" AND month = '{month}'" if month is not None else "")
    per_vehicle = f"""
        SELECT month, '{{view}}' AS view, {{city}} AS city_adcode, emission_standard, method, vehicle_key,
               any_value(weight) AS weight, sum(distance_km{by_city}) AS km,
               sum(fuel_l{by_city}) AS fuel, sum(co2_kg{by_city}) AS co2, sum(idle_h{by_city}) AS idle,
               sum(fuel_l_report{by_city}) AS fuel_report, sum(fuel_l_copert{by_city}) AS fuel_copert,
               sum(fuel_l_measured{by_city}) AS fuel_measured, sum(nox_kg{by_city}) AS nox,
               sum(pm25_kg{by_city}) AS pm25, sum(co_kg{by_city}) AS co, sum(hc_kg{by_city}) AS hc,
               {", ".join(f"sum({e}{by_city}) AS {e}" for e in ENERGY_COLUMNS)}
        FROM {activity} WHERE {where}
        GROUP BY month, {{city}}, emission_standard, method, vehicle_key
    """
    union = " UNION ALL ".join(per_vehicle.format(view=v, city=c) for v, c in VIEWS)
    keys = [f"c.{k}" if k == "province_adcode" else f"v.{k}" for k in INVENTORY_KEYS]
    measures = [f"{INVENTORY_MEASURES[name].format(o=by_vehicle)} AS {name}" for name in INVENTORY_MEASURES]
    columns = dict(zip(INVENTORY_KEYS, keys, strict=True)) | dict(zip(INVENTORY_MEASURES, measures, strict=True))
    order = ", ".join(k for k in INVENTORY_KEYS if k != "province_adcode")  # the province follows the city
    return f"""
        SELECT {", ".join(columns[name] for name in INVENTORY.names)}
        FROM ({union}) v JOIN cities c ON c.city_adcode = v.city_adcode
        GROUP BY {", ".join(keys)} ORDER BY {order}
    """


def _activity_sql(spill: str, month: str) -> str:
    return f"""
        SELECT {", ".join(ACTIVITY.names)}
        FROM read_parquet({spill}) WHERE month = '{month}'
        ORDER BY vehicle_key, city_adcode
    """


@dataclass(frozen=True)
class MonthTotals:
    """A month's totals over its activity rows (the sample's km unweighted, CO2 expanded) and its unobserved
    gaps: what the manifest records of the month."""

    vehicles_active: int
    distance_km_unweighted: float
    distance_km_outside_mainland_unweighted: float
    co2_t: float
    unobserved_gaps: int
    unobserved_km_unweighted: float


def write_outputs(
    folder: RunFolder,
    work: Path,
    vehicles: pa.Table,
    months: list[str],
    gaps: pa.Table,
    inventories: Mapping[str, pa.Table] | None,
    report: Callable[[str, int, int], None],
) -> dict[str, MonthTotals]:
    """Write the monthly activity, inventory and unobserved files of ``months`` into ``folder`` (the staging
    folder: its files are replaced, never written into) from the spill ``work / "activity"``, rebuild the
    DuckDB file and move the quarantine ``work / "quarantine"`` in; the months' totals.

    ``inventories``: the months' inventories as the engine aggregated them; None: aggregated here by DuckDB.
    ``gaps``: the run's unobserved gaps (:data:`~truckcarbon.trajectory.kernel.GAP_SCHEMA`)."""
    spill = work / "activity"
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {sql_str(work / 'duckdb')}")
    con.register("cities_arrow", cities().select(["city_adcode", "province_adcode"]))
    con.execute("CREATE OR REPLACE TABLE cities AS SELECT * FROM cities_arrow")  # not TEMP: the months' cursors read it
    spill_glob = sql_str(spill / "*.parquet")
    has_rows = any(spill.glob("*.parquet"))

    def write_month(label: str) -> tuple[int, float, float, float]:
        """One month's activity and inventory files (on a cursor of its own); its totals."""
        if not has_rows:
            for sub in ("activity", "inventory"):
                folder.month_file(sub, label).unlink(missing_ok=True)
            return (0, 0.0, 0.0, 0.0)
        cur = con.cursor()
        try:
            _copy_parquet(cur, _activity_sql(spill_glob, label), folder.month_file("activity", label))
            if inventories is None:
                _copy_parquet(
                    cur, inventory_sql(f"read_parquet({spill_glob})", label), folder.month_file("inventory", label)
                )
            else:
                with atomic_path(folder.month_file("inventory", label)) as tmp:
                    pq.write_table(inventories[label], tmp, compression="zstd")
            row = cur.execute(
                f"SELECT count(DISTINCT vehicle_key), coalesce(sum(distance_km ORDER BY vehicle_key, city_adcode), 0), "
                f"coalesce(sum(distance_km ORDER BY vehicle_key) FILTER (WHERE city_adcode = 0), 0), "
                f"coalesce(sum(co2_kg * weight ORDER BY vehicle_key, city_adcode), 0) "
                f"FROM read_parquet({spill_glob}) WHERE month = '{label}'"
            ).fetchone()
        finally:
            cur.close()
        assert row is not None
        return (int(row[0]), float(row[1]), float(row[2]), float(row[3]))

    totals: dict[str, MonthTotals] = {}
    # Months are independent: two at a time (each query alone keeps about one core busy).
    report("write", 0, len(months))
    with ThreadPoolExecutor(max_workers=2) as pool:
        written = [pool.submit(write_month, label) for label in months]
        for i, label in enumerate(months):
            try:
                vehicles_active, km, km_outside, co2_kg = written[i].result()
            except BaseException:
                for later in written[i + 1 :]:  # a failed month stops the months not begun
                    later.cancel()
                raise
            report("write", i + 1, len(months))
            gap_count, gap_km = _write_unobserved(folder, label, gaps, vehicles)
            totals[label] = MonthTotals(vehicles_active, km, km_outside, co2_kg / 1000.0, gap_count, gap_km)
    con.close()
    rebuild_database(folder, vehicles)
    # This run's quarantine replaces the last one's (the manifest lists the months each run covered).
    shutil.rmtree(folder.quarantine, ignore_errors=True)
    (work / "quarantine").mkdir(exist_ok=True)
    os.replace(work / "quarantine", folder.quarantine)
    fault_point("quarantine")
    return totals


def _write_unobserved(folder: RunFolder, label: str, gaps: pa.Table, vehicles: pa.Table) -> tuple[int, float]:
    """``unobserved/YYYY-MM.parquet`` (:data:`UNOBSERVED`): one month's gaps that were not attributed, by
    vehicle and city pair (their straight-line displacement, never driven km); the month's gaps and km."""
    part = gaps.filter(pc.equal(gaps["month"], label))
    keys = part["vehicle_id"].to_numpy()
    table = pa.table(
        {
            "vehicle_id": vehicles["vehicle_id"].take(pa.array(keys, pa.int64())),
            **{name: part[name] for name in UNOBSERVED.names[1:]},
        },
        schema=UNOBSERVED.arrow(),
    )
    with atomic_path(folder.month_file("unobserved", label)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return int(pc.sum(table["gaps"]).as_py() or 0), float(pc.sum(table["unobserved_km"]).as_py() or 0.0)


def rebuild_database(folder: RunFolder, vehicles: pa.Table) -> None:
    """``truckcarbon.duckdb`` with tables inventory, activity (of every month in the folder) and vehicles
    (written aside, then renamed)."""
    with atomic_path(folder.database) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            for name in ("inventory", "activity"):
                glob = folder.output(name) / "*.parquet"
                if any(folder.output(name).glob("*.parquet")):
                    source = f"read_parquet({sql_str(glob)}, hive_partitioning = false)"
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")
            con.register("vehicles_arrow", vehicles)
            con.execute("CREATE TABLE vehicles AS SELECT * FROM vehicles_arrow")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        fault_point("database")
        wal = Path(str(tmp) + ".wal")
        if wal.exists():
            os.remove(wal)


__all__ = [
    "INVENTORY_KEYS",
    "INVENTORY_MEASURES",
    "MonthTotals",
    "inventory_sql",
    "quarantine_writer",
    "rebuild_database",
    "sql_str",
    "write_outputs",
]
