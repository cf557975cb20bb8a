"""Benchmark: the embedded (DuckDB) and Spark engines on the same input, pings/s and their ratio.

    python benchmarks/bench_engines.py [--pings 5000000] [--data .bench_data] [--master local[2]]

The input is a simulated world (30 s fixes, default defects) of about ``--pings``
pings, generated once under ``--data``. Both engines run in this process on the
same files; the Spark time includes its session start (reported separately).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from truckcarbon.pipeline import run_pipeline
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate

PINGS_PER_TRUCK_MONTH = 4400


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pings", type=int, default=5_000_000)
    ap.add_argument("--data", type=Path, default=Path(".bench_data"))
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    # At least a dozen trucks: about a third of the sampled trucks report in a given month.
    trucks = max(12, round(args.pings / (PINGS_PER_TRUCK_MONTH * 2)))
    world = args.data / f"engines-{trucks}"
    if not (world / "manifest.json").exists():
        print(f"simulating {trucks} trucks x 2 months into {world} (once)", flush=True)
        simulate(world, SimConfig(trucks=trucks, start_month="2023-03", end_month="2023-04", seed=7), overwrite=True,
                 workers=os.cpu_count() or 1)  # fmt: skip
    from truckcarbon.pipeline.engines.spark import spark_session

    t0 = time.perf_counter()
    spark_session(args.master)
    start_s = time.perf_counter() - t0
    results = {}
    for engine in ("embedded", "spark"):
        out = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-"))
        try:
            s = run_pipeline(world / "pings", world / "vehicles.parquet", out, engine=engine, spark_master=args.master)
            results[engine] = (s.pings_read, s.seconds, s.co2_t)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    for engine, (n, sec, _) in results.items():
        print(f"{engine:8s}: {n:,} pings in {sec:.1f} s = {n / sec / 1e6:.2f} M pings/s")
    print(f"spark session start (not in the figure above): {start_s:.1f} s; master {args.master}")
    emb, spk = results["embedded"], results["spark"]
    print(f"ratio spark / embedded: {(spk[0] / spk[1]) / (emb[0] / emb[1]):.2f}")
    print(f"same CO2 total: {abs(spk[2] / emb[2] - 1) < 1e-9} ({emb[2]:,.3f} t vs {spk[2]:,.3f} t)")


if __name__ == "__main__":
    main()
