"""Benchmark: the compiled per-ping stages of the pipeline alone, ns per row, on one thread.

    python benchmarks/bench_kernels.py [--pings 4000000] [--data .bench_data] [--repeat 7]

Whole-pipeline runs on a shared 2-core machine swing by 20-30% from hour to
hour, too much to judge a change of a few percent in one kernel. This runs each
stage alone on the same rows, ``--repeat`` times in turn, and prints the fastest
time of each (the least disturbed):

- **validate**: the typed ingest rules (:func:`validate_typed`), Arrow casts included;
- **clean**: the sequential cleaning rules (``_flag``) with the cosine pass;
- **robust**: rule 7 (``robust_kernel``: per vehicle-month estimates, spikes, dead band, distances) with
  ``NOISY_ROAD_RULES``, run only when it is on (``noise_rules``); the attribution after it takes the
  default rules' straight lines;
- **attribute**: segments, month split, border split and sums (``attribute_kernel``);
- **baseline**: one numpy pass summing the nine kernel input columns (memory read
  speed in the same run), and the ratio of each stage to it.

Input: a simulated world (30 s fixes, default defects) of about ``--pings`` pings,
written once under ``--data``, read as Parquet row groups and sorted by (vehicle, time).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from truckcarbon.core.months import local_month, month_start_utc_s
from truckcarbon.geo.locator import CityLocator
from truckcarbon.ingest.typed import typed_plan, validate_typed
from truckcarbon.ingest.vehicles import validate_vehicles, vehicle_ids
from truckcarbon.pipeline.reading import KERNEL_SCHEMA
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate
from truckcarbon.trajectory._attribute import N_VALUES, attribute_kernel
from truckcarbon.trajectory._flag import flag_kernel as _flag
from truckcarbon.trajectory._robust import robust_kernel
from truckcarbon.trajectory.rules import NOISY_ROAD_RULES, CleaningRules, attribute_params, robust_params
from truckcarbon.trajectory.schema import QUARANTINED, REASONS

PINGS_PER_TRUCK_MONTH = 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pings", type=int, default=4_000_000)
    ap.add_argument("--data", type=Path, default=Path(".bench_data"))
    ap.add_argument("--repeat", type=int, default=7, help="runs of each stage (the fastest counts)")
    args = ap.parse_args()
    trucks = max(4, round(args.pings / PINGS_PER_TRUCK_MONTH))
    world = args.data / f"kernels-{trucks}"
    if not (world / "manifest.json").exists():
        print(f"simulating {trucks} trucks x 1 month into {world} (once)", flush=True)
        config = SimConfig(trucks=trucks, start_month="2023-03", end_month="2023-03", interval_s=30, seed=5)
        simulate(world, config, overwrite=True, workers=os.cpu_count() or 1)
    table = (
        ds.dataset(world / "pings", partitioning="hive")
        .to_table()
        .sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    )
    table = table.select([f.name for f in table.schema if f.name != "month"])
    plan = typed_plan(table.schema)
    if plan is None:
        raise SystemExit("the simulated pings are not typed; nothing to benchmark")
    vehicles, _, v_counts = validate_vehicles(ds.dataset(world / "vehicles.parquet").to_table(), "vehicles")
    known = vehicle_ids(vehicles, v_counts)
    batches = table.select(list(plan.columns)).combine_chunks().to_batches(max_chunksize=1 << 20)
    n = table.num_rows

    def validate() -> list[pa.RecordBatch]:
        out = []
        for rb in batches:
            columns, reason, _ = validate_typed(rb, plan, known)
            out.append(pa.RecordBatch.from_arrays([*columns, pa.array(reason)], schema=KERNEL_SCHEMA))
        return out

    kernel_in = pa.Table.from_batches(validate()).combine_chunks()
    vid, t, x, y, speed, load, fuel, odo, aside = (kernel_in.column(i).chunks[0].to_numpy() for i in range(9))
    rules = CleaningRules()
    cos = np.empty(n)

    def clean() -> tuple[np.ndarray, np.ndarray, int, int]:
        reason = (aside >= 0).view(np.int8) * np.int8(QUARANTINED)
        dseg = np.full(n, np.nan)
        t_lo, t_hi = _flag(vid, t, x, y, speed, reason, dseg, cos, rules.max_speed_kmh, rules.reanchor_after)
        return reason, dseg, int(t_lo), int(t_hi)

    reason, dseg, t_lo, t_hi = clean()
    month0, last = (int(m) for m in local_month(np.array([t_lo, t_hi])))
    starts = month_start_utc_s(np.arange(month0, last + 2))
    dist, code, kept = np.full(n, np.nan), np.zeros(n, np.int8), np.empty(n, np.int64)
    robust_reason, robust_dseg = reason.copy(), dseg.copy()  # rule 7 may set spikes aside: on copies

    def robust() -> int:
        out = robust_kernel(
            vid, t, x, y, speed, True, np.full(n, -1, np.int8), robust_reason, robust_dseg, cos, starts,
            robust_params(NOISY_ROAD_RULES),
            np.empty(n), np.zeros(n, np.int8), kept,
        )  # fmt: skip
        return int(out[0].size)

    params = attribute_params(rules)
    acc = np.full(n, -1, np.int8)  # no ignition bit
    locator = CityLocator()
    cap = max(64, n // 50)
    outputs = (
        np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int32), np.empty((cap, N_VALUES)),
        np.empty(1024), np.empty(1024, np.int32), np.empty(1024),
    )  # fmt: skip

    def attribute() -> int:
        rows = attribute_kernel(
            vid, t, x, y, reason, dseg, dist, code, load, fuel, odo, acc, starts, month0, params, len(REASONS),
            *outputs, *locator.kernel_args,
        )[0]  # fmt: skip
        if rows < 0:
            raise SystemExit("attribute_kernel: outputs too small for this input")
        return int(rows)

    columns = (vid, t, x, y, speed, load, fuel, odo, aside)

    def baseline() -> float:
        return float(sum(float(c.sum()) for c in columns))

    stages = {
        "validate": validate, "clean": clean, "robust": robust, "attribute": attribute,
        "baseline": baseline,
    }  # fmt: skip
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(max(1, args.repeat)):
        for name, fn in stages.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"input: {n:,} pings of {trucks} trucks ({world}), one thread, fastest of {args.repeat} runs")
    base = best["baseline"] / n * 1e9
    for name, sec in best.items():
        ns = sec / n * 1e9
        print(f"{name:10s} {ns:7.2f} ns/row  {n / sec / 1e6:8.1f} M rows/s  ratio to baseline {ns / base:6.1f}")


if __name__ == "__main__":
    main()
