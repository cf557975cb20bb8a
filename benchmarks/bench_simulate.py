"""Benchmark: simulator pings/s and peak memory, against the cost of just writing the rows.

    python benchmarks/bench_simulate.py [--trucks 2000] [--months 2023-03:2023-08] [--workers 2]

The baseline, measured in the same run, writes the same number of rows of the
same schema to Parquet with the simulator's writer settings and no simulation at
all (the I/O floor); the ratio says how far the simulator is from it. The rate
is end to end: worker start-up, every month's pings, the vehicles and the truth
table; the time of each month is printed too. Peak RSS is the main process's and the largest worker's.
Target: >= 5 M pings/s on 2 cores, peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.pingfile import PING_SCHEMA, write_pings
from truckcarbon.sim.run import simulate
from truckcarbon.sim.workers import HELPER_START


def write_floor(n_rows: int, folder: Path, rows_per_file: int) -> float:
    """Seconds to write ``n_rows`` random ping rows to Parquet in parts, as the simulator writes them."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    done = part = 0
    while done < n_rows:
        n = min(rows_per_file, n_rows - done)
        table = pa.table(
            [
                pa.array(np.sort(rng.integers(1, 1000, n))),
                pa.array(rng.integers(1_600_000_000_000, 1_700_000_000_000, n)).cast(pa.timestamp("ms", tz="UTC")),
                pa.array(rng.uniform(73, 135, n)),
                pa.array(rng.uniform(18, 53, n)),
                pa.array(rng.uniform(0, 90, n).astype(np.float32)),
                pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, 3, n), pa.int8()), pa.array(["empty", "half", "full"])
                ),
                pa.array(np.cumsum(rng.uniform(0, 1, n))),
                pa.array(rng.uniform(90, 600, n).astype(np.float32)),
                pa.array(rng.random(n) < 0.8),
            ],
            schema=PING_SCHEMA,
        )
        write_pings(table, folder / f"part-{part:05d}.parquet")
        done += n
        part += 1
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trucks", type=int, default=2000)
    ap.add_argument("--months", default="2023-03:2023-08")
    ap.add_argument("--interval-s", type=int, default=30)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    start, end = args.months.split(":")
    work = Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    try:
        config = SimConfig(trucks=args.trucks, start_month=start, end_month=end, interval_s=args.interval_s)
        simulate(work / "warmup", SimConfig(trucks=2, start_month=start, end_month=start))  # load compiled kernels
        t0 = time.perf_counter()
        marks: list[tuple[str, int, float]] = []
        summary = simulate(
            work / "sim",
            config,
            workers=args.workers,
            on_month=lambda label, n: marks.append((label, n, time.perf_counter() - t0)),
        )
        secs = time.perf_counter() - t0
        before = 0.0
        for label, n, at in marks:
            print(f"  {label}: {n:,} pings, done at {at:.1f} s ({n / max(at - before, 1e-9) / 1e6:.2f} M pings/s)")
            before = at
        rate = summary.pings / secs
        print(
            f"simulate ({args.workers} workers, helpers by {HELPER_START}): "
            f"{summary.trucks} trucks x {summary.months} months = "
            f"{summary.pings:,} pings in {secs:.1f} s = {rate / 1e6:.2f} M pings/s"
        )
        (work / "floor").mkdir()
        floor_s = write_floor(summary.pings, work / "floor", config.rows_per_file)
        floor_rate = summary.pings / floor_s / 1e6
        print(f"baseline (write the same rows to Parquet only, 1 process): {floor_s:.1f} s = {floor_rate:.2f} M rows/s")
        print(f"ratio simulate / write-only: {rate / (summary.pings / floor_s):.2f}")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
        print(f"peak RSS: main process {own:.0f} MiB, largest worker {children:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
