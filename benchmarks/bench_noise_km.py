"""Accuracy of the kernel's kilometres under GPS noise, against the simulator's exact truth.

    python benchmarks/bench_noise_km.py [--trucks 200] [--months 2022-03:2022-04] [--noise 5,10,15,25]
        [--interval-s 30] [--parked-interval-s 300] [--seeds 1] [--no-speed] [--realistic] [--diagnose]

For each noise level (``DefectRates.gps_noise_m``, the other defects at their
defaults) a world is simulated once under ``--data`` and its pings are run
through :func:`~truckcarbon.trajectory.kernel.run_kernel` (the pipeline's
kernel call: speed, load, fuel and odometer channels; ``--no-speed`` drops
the speed channel). Printed per noise level: the worst national monthly km
error, the share of city-months with >= 100 truth km within 3% and the worst
of them. ``--realistic`` simulates the realistic world
(:data:`truckcarbon.sim.defects.REALISTIC`: setting-dependent heavy-tailed
noise, parked wander, receivers of different quality), where ``--noise`` scales
the open-road sd.

``--diagnose`` instead simulates noise-only worlds (no other defect: every true
fix is emitted, in order) and splits the excess kilometres of the kernel by what
the truck was doing over each segment (parked, crawling below 10 km/h, moving),
from the noise-free run of the same seed.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from truckcarbon.geo._kernels import haversine_many
from truckcarbon.geo.locator import CityLocator
from truckcarbon.sim import defects as sim_defects
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.run import SimConfig, simulate
from truckcarbon.trajectory.kernel import CleaningRules, run_kernel


def world(data: Path, config: SimConfig) -> Path:
    """The world of ``config`` under ``data``, simulated once."""
    key = abs(hash(repr(config))) % 10**12
    out = data / f"noise-{key}"
    if not (out / "manifest.json").exists():
        simulate(out, config, overwrite=True, workers=os.cpu_count() or 1)
    return out


def read_pings(out: Path) -> dict[str, np.ndarray]:
    table = ds.dataset(out / "pings", partitioning="hive").to_table()
    load = table["load_state"]
    load_codes = (
        pc.index_in(load.cast(pa.string()), pa.array(["empty", "half", "full"])).fill_null(-1).to_numpy()
        if load.null_count < len(load)
        else np.full(len(load), -1)
    )

    def floats(name: str) -> np.ndarray:
        col = table[name]
        return np.full(len(col), np.nan) if col.null_count == len(col) else col.to_numpy(zero_copy_only=False)

    return {
        "vid": table["vehicle_id"].to_numpy(),
        "t": table["ts"].cast(pa.int64()).to_numpy() // 1000,
        "lon": table["lon"].to_numpy(),
        "lat": table["lat"].to_numpy(),
        "speed": table["speed_kmh"].to_numpy().astype(np.float32),
        "load": load_codes.astype(np.int8),
        "fuel": floats("fuel_level_l"),
        "odo": floats("odometer_km"),
    }


def kernel_km(out: Path, locator: CityLocator, rules: CleaningRules, speed: bool = True) -> pa.Table:
    p = read_pings(out)
    res = run_kernel(
        p["vid"], p["t"], p["lon"], p["lat"], locator, p["speed"] if speed else None, rules,
        load=p["load"], fuel_level_l=p["fuel"], odometer_km=p["odo"],
    )  # fmt: skip
    return res.activity


def errors(out: Path, activity: pa.Table) -> tuple[float, float, float, int]:
    """(worst national monthly error, share of city-months >= 100 km within 3%, worst such error, their count)."""
    truth = pq.read_table(out / "truth.parquet")
    months = sorted(set(truth["month"].to_pylist()))
    act = activity.filter(pc.is_in(activity["month"], pa.array(months)))
    t_nat = truth.group_by("month").aggregate([("distance_km", "sum")])
    p_nat = act.group_by("month").aggregate([("distance_km", "sum")])
    tn = dict(zip(t_nat["month"].to_pylist(), t_nat["distance_km_sum"].to_pylist(), strict=True))
    pn = dict(zip(p_nat["month"].to_pylist(), p_nat["distance_km_sum"].to_pylist(), strict=True))
    national = max((pn.get(m, 0.0) / tn[m] - 1 for m in months), key=abs)  # signed
    t_c = truth.group_by(["month", "city_adcode"]).aggregate([("distance_km", "sum")])
    p_c = act.group_by(["month", "city_adcode"]).aggregate([("distance_km", "sum")])
    pc_ = {
        (m, c): k
        for m, c, k in zip(
            p_c["month"].to_pylist(), p_c["city_adcode"].to_pylist(), p_c["distance_km_sum"].to_pylist(), strict=True
        )
    }
    errs = np.array(
        [
            abs(pc_.get((m, c), 0.0) / k - 1)
            for m, c, k in zip(
                t_c["month"].to_pylist(), t_c["city_adcode"].to_pylist(), t_c["distance_km_sum"].to_pylist(), strict=True
            )
            if k >= 100
        ]
    )
    return national, float(np.mean(errs < 0.03)), float(errs.max()), int(errs.size)


def diagnose(data: Path, base: SimConfig, noises: list[float], rules: CleaningRules) -> None:
    """Excess km by what the truck was doing, on noise-only worlds (module docstring)."""
    only = DefectRates(0, 0, 0, 0, 0, 0, 0)
    clean = read_pings(world(data, replace(base, defects=only)))
    order = np.lexsort((clean["t"], clean["vid"]))
    c = {k: v[order] for k, v in clean.items()}
    same = c["vid"][1:] == c["vid"][:-1]
    d0 = haversine_many(c["lon"][:-1], c["lat"][:-1], c["lon"][1:], c["lat"][1:])
    dt = (c["t"][1:] - c["t"][:-1]).astype(np.float64)
    v0 = np.where(dt > 0, d0 / np.maximum(dt, 1) * 3600.0, 0.0)
    state = np.where(d0 == 0, 0, np.where(v0 < 10.0, 1, 2))
    names = ("parked (true step 0)", "crawling (< 10 km/h)", "moving")
    true_total = float(d0[same].sum())
    print(f"noise-only world: {base.trucks} trucks, {base.start_month}..{base.end_month}, fixes every "
          f"{base.interval_s} s moving / {base.parked_interval_s} s parked; truth {true_total:,.0f} km")  # fmt: skip
    for k in range(3):
        sel = same & (state == k)
        print(f"  {names[k]}: {sel.sum():,} segments, {d0[sel].sum():,.0f} true km")
    for sigma in noises:
        noisy = read_pings(world(data, replace(base, defects=replace(only, gps_noise_m=sigma))))
        o = np.lexsort((noisy["t"], noisy["vid"]))
        n = {k: v[o] for k, v in noisy.items()}
        assert np.array_equal(n["t"], c["t"]) and np.array_equal(n["vid"], c["vid"])
        d = haversine_many(n["lon"][:-1], n["lat"][:-1], n["lon"][1:], n["lat"][1:])
        v = np.where(dt > 0, d / np.maximum(dt, 1) * 3600.0, 0.0)
        drift = (d * 1000.0 < rules.drift_m) & (v < rules.drift_kmh)  # the old drift rule (7)
        naive = np.where(drift, 0.0, d)
        line = [f"sigma {sigma:4.0f} m: naive (drift rule only) {naive[same].sum() / true_total - 1:+.2%}"]
        for k in range(3):
            sel = same & (state == k)
            line.append(f"{names[k].split()[0]} {(naive[sel].sum() - d0[sel].sum()) / true_total:+.2%}")
        print("  " + "; ".join(line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trucks", type=int, default=200)
    ap.add_argument("--months", default="2022-03:2022-04")
    ap.add_argument("--noise", default="5,10,15,25")
    ap.add_argument("--interval-s", type=int, default=30)
    ap.add_argument("--parked-interval-s", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=1, help="worlds per noise level (seeds 1..N)")
    ap.add_argument("--no-speed", action="store_true", help="run the kernel without the speed channel")
    ap.add_argument("--realistic", action="store_true", help="the realistic noise model (sim.defects.REALISTIC)")
    ap.add_argument("--diagnose", action="store_true")
    ap.add_argument("--data", type=Path, default=Path(".bench_data"))
    args = ap.parse_args()
    start, end = args.months.split(":")
    noises = [float(s) for s in args.noise.split(",")]
    rules = CleaningRules()
    base = SimConfig(
        trucks=args.trucks, start_month=start, end_month=end, interval_s=args.interval_s,
        parked_interval_s=args.parked_interval_s, seed=1,
    )  # fmt: skip
    if args.diagnose:
        diagnose(args.data, base, noises, rules)
        return
    locator = CityLocator()
    print(f"{args.trucks} trucks x {start}..{end}, {args.interval_s} s / {args.parked_interval_s} s parked, "
          f"{'realistic' if args.realistic else 'i.i.d. Gaussian'} noise, "
          f"{'no speed channel' if args.no_speed else 'speed channel'}")  # fmt: skip
    print("| GPS noise (sd) | seed | national monthly km, worst month | city-months >= 100 km within 3% | worst |")
    print("|---|---|---|---|---|")
    for sigma in noises:
        for seed in range(1, args.seeds + 1):
            defects = replace(sim_defects.REALISTIC, gps_noise_m=sigma) if args.realistic else DefectRates(gps_noise_m=sigma)
            out = world(args.data, replace(base, seed=seed, defects=defects))
            nat, share, worst, cells = errors(out, kernel_km(out, locator, rules, speed=not args.no_speed))
            print(f"| {sigma:g} m | {seed} | {nat:+.2%} | {share:.0%} of {cells} | {worst:.1%} |", flush=True)


if __name__ == "__main__":
    main()
