"""Benchmark: each emission method's fuel against the road world's physical truth.

    python benchmarks/bench_methods.py [--trucks 300] [--months 2023-05:2023-06] [--seed 1] [--interval 30]
        [--data /tmp/bench_methods] [--urban-kmh 35]

Simulates the road world (:mod:`truckcarbon.sim.road`, default defects, every
channel), whose true fuel comes from the tractive-power model of
:mod:`truckcarbon.sim.physics` (independent of every method), runs
``truckcarbon run`` on it with ``[emissions] method = "measured"`` (every row
also carries ``fuel_l_report`` and ``fuel_l_copert``) and prints, for each
method:

- the national monthly fuel and its error against the truth;
- the per-vehicle-month error distribution (vehicle-months with at least 100
  true km): median signed error, median and 90th percentile of the absolute error;
- over city-months with at least 100 true km, and over the urban-heavy ones
  (average moving speed below ``--urban-kmh``, from the run's own ``driving_h``:
  what a user sees, not the truth), the mean absolute error and how often
  ``copert`` is closer to the truth than ``report``;
- the measured path where the gauge covers the vehicle-month (rows the run
  marks ``measured_fuel``): the share within 2% of the truth.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import duckdb

from truckcarbon.emissions.method import EmissionSettings
from truckcarbon.pipeline import PipelineConfig, run_pipeline
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate
from truckcarbon.trajectory.rules import NOISY_ROAD_RULES

METHODS = ("report", "copert", "measured")


def _views(con: duckdb.DuckDBPyConnection, world: Path, run: Path) -> None:
    con.execute(f"""
        CREATE VIEW truth AS SELECT CAST(vehicle_id AS VARCHAR) AS vehicle_id, month, city_adcode, distance_km,
               fuel_l_physical AS fuel FROM read_parquet('{world}/truth.parquet')""")
    con.execute(f"""
        CREATE VIEW act AS SELECT vehicle_id, month, city_adcode, vehicle_class, distance_km, driving_h, idle_h, method,
               fuel_l_report AS report, fuel_l_copert AS copert, fuel_l_measured AS measured
        FROM read_parquet('{run}/activity/*.parquet')""")


def national(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    """(month, truth L, then each method's L and error) per month."""
    cols = ", ".join(f"p.{m}, p.{m} / t.fuel - 1" for m in METHODS)
    return con.execute(f"""
        WITH t AS (SELECT month, sum(fuel) fuel FROM truth GROUP BY 1),
             p AS (SELECT month, {", ".join(f"sum({m}) {m}" for m in METHODS)} FROM act GROUP BY 1)
        SELECT t.month, t.fuel, {cols} FROM t JOIN p USING (month) ORDER BY 1""").fetchall()


def per_vehicle_month(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, float, float, int]]:
    """Per method: median signed error, median and p90 absolute error, vehicle-months (>= 100 true km)."""
    out = {}
    for m in METHODS:
        row = con.execute(f"""
            WITH t AS (SELECT vehicle_id, month, sum(fuel) fuel, sum(distance_km) km FROM truth GROUP BY ALL),
                 p AS (SELECT vehicle_id, month, sum({m}) est FROM act GROUP BY ALL),
                 e AS (SELECT coalesce(p.est, 0) / t.fuel - 1 AS err FROM t LEFT JOIN p USING (vehicle_id, month)
                       WHERE t.km >= 100)
            SELECT median(err), median(abs(err)), quantile_cont(abs(err), 0.9), count(*) FROM e""").fetchone()
        assert row is not None
        out[m] = (float(row[0]), float(row[1]), float(row[2]), int(row[3]))
    return out


def city_months(con: duckdb.DuckDBPyConnection, urban_kmh: float) -> dict[str, tuple[object, ...]]:
    """All and urban-heavy city-months (>= 100 true km): count, mean |error| per method, share copert closer."""
    query = f"""
        WITH t AS (SELECT month, city_adcode, sum(fuel) fuel, sum(distance_km) km FROM truth
                   WHERE city_adcode <> 0 GROUP BY ALL),
             p AS (SELECT month, city_adcode, {", ".join(f"sum({m}) {m}" for m in METHODS)},
                          sum(distance_km) / nullif(sum(driving_h), 0) AS kmh FROM act GROUP BY ALL),
             e AS (SELECT p.kmh, {", ".join(f"abs(p.{m} / t.fuel - 1) AS {m}" for m in METHODS)}
                   FROM t JOIN p USING (month, city_adcode) WHERE t.km >= 100)
        SELECT count(*), {", ".join(f"avg({m})" for m in METHODS)}, avg(CASE WHEN copert < report THEN 1.0 ELSE 0 END),
               median(kmh)
        FROM e WHERE {{where}}"""
    return {
        "all": con.execute(query.format(where="true")).fetchone() or (),
        "urban": con.execute(query.format(where=f"kmh < {urban_kmh}")).fetchone() or (),
    }


def by_class(con: duckdb.DuckDBPyConnection, lo: float, hi: float) -> list[tuple[object, ...]]:
    """(class, rows, L/100 km of the truth and of each method) over rows of >= 20 true km whose average
    moving speed is within ``lo``-``hi`` km/h."""
    cols = ", ".join(f"100 * sum(a.{m}) / sum(a.distance_km)" for m in METHODS)
    return con.execute(f"""
        SELECT a.vehicle_class, count(*), 100 * sum(t.fuel) / sum(t.distance_km), {cols}
        FROM act a JOIN truth t USING (vehicle_id, month, city_adcode)
        WHERE a.driving_h > 0 AND a.distance_km / a.driving_h BETWEEN {lo} AND {hi} AND t.distance_km >= 20
        GROUP BY 1 ORDER BY 1""").fetchall()


def measured_where_covered(con: duckdb.DuckDBPyConnection) -> tuple[int, float, float]:
    """Vehicle-months whose gauge was used: count, share within 2% of the truth, median |error|."""
    row = con.execute("""
        WITH p AS (SELECT vehicle_id, month, sum(measured) est FROM act GROUP BY ALL
                   HAVING bool_and(method = 'measured_fuel')),
             t AS (SELECT vehicle_id, month, sum(fuel) fuel FROM truth GROUP BY ALL),
             e AS (SELECT abs(p.est / t.fuel - 1) err FROM p JOIN t USING (vehicle_id, month))
        SELECT count(*), avg(CASE WHEN err <= 0.02 THEN 1.0 ELSE 0 END), median(err) FROM e""").fetchone()
    assert row is not None
    return int(row[0]), float(row[1] or 0.0), float(row[2] or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trucks", type=int, default=300)
    ap.add_argument("--months", default="2023-05:2023-06")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval", type=int, default=30)
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench_methods"))
    ap.add_argument("--urban-kmh", type=float, default=35.0)
    args = ap.parse_args()
    start, end = args.months.split(":")
    world, run = args.data / "world", args.data / "run"
    t0 = time.perf_counter()
    config = SimConfig(
        trucks=args.trucks, start_month=start, end_month=end, seed=args.seed, interval_s=args.interval, geometry="road"
    )
    simulate(world, config, overwrite=True)
    t1 = time.perf_counter()
    settings = PipelineConfig(rules=NOISY_ROAD_RULES, emissions=EmissionSettings(method="measured"))
    shutil.rmtree(run, ignore_errors=True)  # a fresh run (an unchanged input would be skipped)
    run_pipeline(world / "pings", world / "vehicles.parquet", run, config=settings)
    t2 = time.perf_counter()
    print(f"road world: {args.trucks} trucks, {args.months}, {args.interval} s fixes, seed {args.seed}, default "
          f"defects (simulated in {t1 - t0:.0f} s, run in {t2 - t1:.0f} s)")  # fmt: skip
    con = duckdb.connect()
    _views(con, world, run)
    print("\nnational monthly fuel against the physical truth")
    print(f"  {'month':8} {'truth L':>12} " + " ".join(f"{m + ' L':>12} {'err':>7}" for m in METHODS))
    for month, truth, *values in national(con):
        cells = " ".join(f"{values[2 * i]:12.0f} {values[2 * i + 1]:+7.2%}" for i in range(len(METHODS)))
        print(f"  {month:8} {truth:12.0f} {cells}")
    print("\nper vehicle-month (>= 100 true km): median error, median |error|, p90 |error|")
    for m, (med, mabs, p90, n) in per_vehicle_month(con).items():
        print(f"  {m:9} {med:+7.2%} {mabs:7.2%} {p90:7.2%}   ({n} vehicle-months)")
    cells = city_months(con, args.urban_kmh)
    print("\ncity-months (>= 100 true km): mean |error| by method; share where copert is closer than report")
    for name, row in cells.items():
        if not row or not row[0]:
            print(f"  {name:6} none")
            continue
        n, *errs, closer, kmh = row
        label = "all" if name == "all" else f"urban-heavy (< {args.urban_kmh:g} km/h)"
        errors = "  ".join(f"{m} {e:6.2%}" for m, e in zip(METHODS, errs, strict=True))
        print(f"  {label:26} {n:5d} city-months, median {kmh:4.1f} km/h: {errors}; copert closer in {closer:.0%}")
    print("\nrows of 25-35 km/h average moving speed, by class: L/100 km of the truth and of each method")
    for klass, n, truth, *rates in by_class(con, 25.0, 35.0):
        print(f"  {klass:22} {n:4d} rows: truth {truth:5.1f}  " + "  ".join(
            f"{m} {r:5.1f}" for m, r in zip(METHODS, rates, strict=True)))  # fmt: skip
    n, within, med = measured_where_covered(con)
    print(f"\nmeasured path where the gauge covers the vehicle-month: {n} vehicle-months, {within:.1%} within 2% of "
          f"the truth (median |error| {med:.2%})")  # fmt: skip


if __name__ == "__main__":
    main()
