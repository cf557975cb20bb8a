"""Benchmark: do the Monte Carlo's 90% intervals cover the road world's physical truth, and how fast are they?

    python benchmarks/bench_uncertainty.py [--trucks 300] [--months 2023-05:2023-06] [--seed 1]
        [--gauge-share 0.3] [--methods copert,report] [--draws 1000] [--data /tmp/bench_uncertainty]
    python benchmarks/bench_uncertainty.py --time RUN [--draws 1000]

Coverage: simulates the road world (default defects), keeps the fuel gauge of a
random ``--gauge-share`` of the trucks (the others report none), sets every
weight to 1 (the truth is the sample's: the bootstrap of the weights, which
widens the intervals for the population, is off), runs ``truckcarbon run`` with
each method and its intervals, and prints the share of city-months with at
least 100 true km (and of national months) whose p05-p95 holds the true CO2
(the physical model's CO2: its fuel at each truck's fuel's factor). Target: 85-95%.

``--time RUN``: the seconds of :func:`inventory_intervals` on a run folder (the
demo's: 1,000 draws over 72 months), against reading the same activity and
summing its point inventory in the same process (the baseline).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.analysis.uncertainty import COLUMNS, inventory_intervals
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.emissions.method import EmissionSettings
from truckcarbon.emissions.montecarlo import UncertaintySettings
from truckcarbon.pipeline import PipelineConfig, run_pipeline
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate
from truckcarbon.trajectory.rules import NOISY_ROAD_RULES


def _gauges_of_some(world: Path, out: Path, share: float, seed: int) -> Path:
    """The world's pings with the fuel gauge of a random ``share`` of the trucks only."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    vehicles = pq.read_table(world / "vehicles.parquet", columns=["vehicle_id"])["vehicle_id"].to_numpy()
    rng = np.random.default_rng(seed)
    keep = pa.array(vehicles[rng.random(vehicles.size) < share])
    for k, f in enumerate(sorted((world / "pings").rglob("*.parquet"))):
        t = pq.read_table(f)
        has = pc.is_in(t["vehicle_id"], keep)
        fuel = pc.if_else(has, t["fuel_level_l"], pa.nulls(t.num_rows, t.schema.field("fuel_level_l").type))
        fuelled = t.set_column(t.column_names.index("fuel_level_l"), "fuel_level_l", fuel)
        pq.write_table(fuelled, out / f"p{k:05d}.parquet")
    return out


def coverage(world: Path, folder: RunFolder) -> tuple[int, float, int, float, float]:
    """(city-months, share covered, national months, share covered, median relative half-width)."""
    con = duckdb.connect()
    con.register("city", pq.read_table(folder.table_path("analysis", "city_intervals")))
    con.register("nat", pq.read_table(folder.table_path("analysis", "national_intervals")))
    truth = f"read_parquet('{world}/truth.parquet')"
    city = con.execute(f"""
        WITH t AS (SELECT month, city_adcode, sum(co2_kg_physical) / 1000 AS co2, sum(distance_km) km
                   FROM {truth} WHERE city_adcode <> 0 GROUP BY ALL)
        SELECT count(*), avg(CASE WHEN t.co2 BETWEEN c.co2_t_p05 AND c.co2_t_p95 THEN 1.0 ELSE 0 END),
               median((c.co2_t_p95 - c.co2_t_p05) / 2 / c.co2_t_p50)
        FROM t LEFT JOIN city c USING (month, city_adcode) WHERE t.km >= 100""").fetchone()  # none: not covered
    nat = con.execute(f"""
        WITH t AS (SELECT month, sum(co2_kg_physical) / 1000 AS co2 FROM {truth} WHERE city_adcode <> 0
                   GROUP BY ALL)
        SELECT count(*), avg(CASE WHEN t.co2 BETWEEN n.co2_t_p05 AND n.co2_t_p95 THEN 1.0 ELSE 0 END)
        FROM t LEFT JOIN nat n USING (month)""").fetchone()
    assert city is not None and nat is not None
    return int(city[0]), float(city[1] or 0), int(nat[0]), float(nat[1] or 0), float(city[2] or 0)


def time_intervals(run: Path, draws: int) -> None:
    folder = RunFolder.open(run)
    t0 = time.perf_counter()
    activity = folder.read_activity(COLUMNS)
    point = pc.sum(pc.multiply(activity["co2_kg"], activity["weight"])).as_py()
    base = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = inventory_intervals(folder, UncertaintySettings(draws=draws))
    mc = time.perf_counter() - t1
    months = result.national.num_rows
    print(f"{run}: {activity.num_rows:,} activity rows, {months} months, {draws} draws")
    print(f"  baseline (read the activity, sum the point CO2 {point / 1e9:.2f} Mt): {base:.2f} s")
    print(f"  intervals (inventory, city and national): {mc:.1f} s  ({mc / base:.0f}x the baseline; target <= 60 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trucks", type=int, default=300)
    ap.add_argument("--months", default="2023-05:2023-06")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gauge-share", type=float, default=0.3)
    ap.add_argument("--methods", default="copert,report")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench_uncertainty"))
    ap.add_argument("--time", type=Path, default=None, help="time the intervals of this run folder instead")
    args = ap.parse_args()
    if args.time is not None:
        time_intervals(args.time, args.draws)
        return
    start, end = args.months.split(":")
    world = args.data / "world"
    config = SimConfig(trucks=args.trucks, start_month=start, end_month=end, seed=args.seed, geometry="road")
    simulate(world, config, overwrite=True)
    pings = _gauges_of_some(world, args.data / "pings", args.gauge_share, args.seed)
    vehicles = pq.read_table(world / "vehicles.parquet")
    ones = pa.array(np.ones(vehicles.num_rows))
    vehicles = vehicles.set_column(vehicles.column_names.index("weight"), "weight", ones)
    pq.write_table(vehicles, args.data / "vehicles.parquet")
    print(f"road world: {args.trucks} trucks, {args.months}, seed {args.seed}; fuel gauges on {args.gauge_share:.0%} "
          f"of the trucks; weights 1 (no bootstrap); {args.draws} draws")  # fmt: skip
    for method in args.methods.split(","):
        run = args.data / f"run-{method}"
        shutil.rmtree(run, ignore_errors=True)
        settings = PipelineConfig(rules=NOISY_ROAD_RULES, emissions=EmissionSettings(method=method))
        run_pipeline(pings, args.data / "vehicles.parquet", run, config=settings)
        folder = RunFolder.open(run)
        result = inventory_intervals(folder, UncertaintySettings(draws=args.draws, bootstrap=False))
        n, cov, n_nat, cov_nat, half = coverage(world, folder)
        print(f"  {method:8} factor errors from {result.gauge_trucks} gauge trucks, "
              f"{result.unobserved_km:,.0f} unobserved km drawn in: "
              f"{cov:.1%} of {n} city-months covered (median half-width {half:.1%}), "
              f"{cov_nat:.0%} of {n_nat} national months; target 85-95%")  # fmt: skip


if __name__ == "__main__":
    main()
