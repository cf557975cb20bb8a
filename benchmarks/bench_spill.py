"""Benchmark: the embedded engine's spill of unsorted input, by codec: time, spill bytes, and the input's size.

    python benchmarks/bench_spill.py --world WORLD [--codecs none,lz4,zstd] [--rounds 2]

Runs ``truckcarbon run`` on the pings of a simulated world (the simulator's layout: month folders,
trucks interleaved, so the rows are routed to vehicle partitions on disk, every one spilled:
``partition_memory_mb = 0``) with each ``spill_compression``, and prints per codec the fastest
round's seconds and M pings/s, the spill files' bytes per ping (as they stood before the partitions
were read back), the input's compressed bytes per ping, and the time against ``none`` in the same run.
The inventories must be identical.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from truckcarbon.pipeline import PipelineConfig, run_pipeline
from truckcarbon.pipeline.engines import partitions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, required=True, help="a world written by truckcarbon simulate")
    ap.add_argument("--codecs", default="none,lz4,zstd")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    files = sorted((args.world / "pings").rglob("*.parquet"))
    pings = sum(pq.read_metadata(f).num_rows for f in files)
    input_bytes = sum(f.stat().st_size for f in files)
    spilled: list[int] = []
    close = partitions.Partitions.close

    def recording(self: partitions.Partitions) -> None:
        close(self)
        spilled.append(sum(p.stat().st_size for p in self.work.glob("pings-*.arrow")))

    partitions.Partitions.close = recording  # type: ignore[method-assign]
    results: dict[str, tuple[float, int]] = {}
    inventories = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for codec in args.codecs.split(","):
                out = Path(tmp) / f"run-{codec}"
                shutil.rmtree(out, ignore_errors=True)
                spilled.clear()
                t0 = time.perf_counter()
                run_pipeline(args.world / "pings", args.world / "vehicles.parquet", out,
                             config=PipelineConfig(spill_compression=codec, partition_memory_mb=0))  # fmt: skip
                seconds = time.perf_counter() - t0
                print(
                    f"round {r + 1}: {codec:5} {seconds:6.1f} s, spill {sum(spilled) / pings:5.1f} B/ping", flush=True
                )
                if codec not in results or seconds < results[codec][0]:
                    results[codec] = (seconds, sum(spilled))
                inventories[codec] = pq.read_table(out / "inventory").to_pydict()
    base = results.get("none", next(iter(results.values())))[0]
    print(f"input: {pings:,} pings, {input_bytes / pings:.1f} compressed bytes per ping ({args.world})")
    for codec, (seconds, spill) in results.items():
        print(f"{codec:5} {seconds:6.1f} s ({pings / seconds / 1e6:.2f} M pings/s, fastest of {args.rounds}), "
              f"spill {spill / pings:.1f} B/ping = {spill / input_bytes:.2f} of the input; ratio time / none: "
              f"{seconds / base:.2f}")  # fmt: skip
    same = all(inv == inventories[next(iter(inventories))] for inv in inventories.values())
    print(f"identical inventories: {same}; target: spill <= the input's size")


if __name__ == "__main__":
    main()
