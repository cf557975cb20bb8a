"""Benchmark: CityLocator pings/s per core against a Shapely STRtree baseline, same run.

    python benchmarks/bench_locate.py [--points 10000000] [--baseline-points 20000]

Points are trajectory-ordered: trucks driving straight-ish legs between random
city pairs with a WGS-84 fix every ~0.5 km (30 s at 60 km/h), the order a
per-vehicle pipeline feeds them in. Our locator runs on one thread; the baseline
is ``shapely.STRtree.query(points, predicate="within")`` over the same
full-resolution unit polygons (the geopandas ``sjoin`` engine) on a subsample,
also one thread, plus the faster per-polygon ``shapely.contains_xy`` loop for
reference. Both answers are compared on the subsample.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import shapely

from truckcarbon.geo.boundaries import load_unit_geometries
from truckcarbon.geo.build import build_index
from truckcarbon.geo.crs import wgs84_to_gcj02
from truckcarbon.geo.locator import CityLocator
from truckcarbon.geo.reference import cities


def trajectories(n_points: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory-ordered WGS-84 fixes along legs between random unit inner points."""
    rng = np.random.default_rng(seed)
    t = cities()
    ox, oy = t["inner_lon"].to_numpy(), t["inner_lat"].to_numpy()
    lons, lats, total = [], [], 0
    while total < n_points:
        a, b = rng.integers(0, len(ox), 2)
        km = 111.0 * np.hypot((ox[b] - ox[a]) * np.cos(np.radians(oy[a])), oy[b] - oy[a])
        n = int(min(max(km / 0.5, 50), n_points - total))
        s = np.linspace(0.0, 1.0, n)
        wiggle = np.cumsum(rng.normal(0.0, 0.002, (n, 2)), axis=0) * np.sin(np.pi * s)[:, None]
        lons.append(ox[a] + (ox[b] - ox[a]) * s + wiggle[:, 0])
        lats.append(oy[a] + (oy[b] - oy[a]) * s + wiggle[:, 1])
        total += n
    return np.concatenate(lons), np.concatenate(lats)


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--baseline-points", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    index = build_index("wgs84")
    build_s = time.perf_counter() - t0
    print(f"index build (wgs84, from the boundary files, in memory): {build_s:.1f} s, {index.nbytes / 2**20:.0f} MiB")

    loc = CityLocator("wgs84")
    lon, lat = trajectories(args.points)
    loc.locate(lon[:1000], lat[:1000])  # load the compiled kernel
    secs = best_of(lambda: loc.locate_units(lon, lat), args.repeat)
    rate = lon.size / secs
    codes = loc.locate(lon, lat)
    print(
        f"truckcarbon CityLocator: {lon.size:,} trajectory-ordered pings in {secs:.3f} s "
        f"= {rate / 1e6:.1f} M pings/s per core ({(codes > 0).mean():.1%} in a unit)"
    )

    sub = np.random.default_rng(2).choice(lon.size, args.baseline_points, replace=False)
    sub.sort()
    gx, gy = wgs84_to_gcj02(lon[sub], lat[sub])
    by_code = load_unit_geometries([int(c) for c in loc.adcodes])
    geoms = np.asarray([by_code[int(c)] for c in loc.adcodes], dtype=object)
    tree = shapely.STRtree(geoms)
    pts = shapely.points(gx, gy)

    def strtree() -> np.ndarray:
        p, g = tree.query(pts, predicate="within")
        out = np.zeros(pts.size, np.int32)
        out[p] = loc.adcodes[g]
        return out

    base_s = best_of(strtree, 1)
    base_rate = sub.size / base_s
    base_codes = strtree()
    agree = np.mean(base_codes == codes[sub])
    print(
        f"baseline shapely STRtree.query(within): {sub.size:,} pings in {base_s:.2f} s "
        f"= {base_rate:,.0f} pings/s; agreement with truckcarbon {agree:.4%}"
    )
    for g in geoms:
        shapely.prepare(g)
    bounds = shapely.bounds(geoms)

    def contains_loop() -> None:
        out = np.zeros(gx.size, np.int32)
        for code, g, (x0, y0, x1, y1) in zip(loc.adcodes, geoms, bounds, strict=True):
            m = np.flatnonzero((gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1) & (out == 0))
            out[m[shapely.contains_xy(g, gx[m], gy[m])]] = code

    loop_s = best_of(contains_loop, 1)
    print(f"reference shapely prepared contains_xy loop: {sub.size / loop_s:,.0f} pings/s")
    print(f"ratio truckcarbon / STRtree baseline: {rate / base_rate:,.0f}x")
    print(f"ratio truckcarbon / contains_xy loop: {rate / (sub.size / loop_s):,.0f}x")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"index memory {loc.nbytes / 2**20:.0f} MiB; process peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
