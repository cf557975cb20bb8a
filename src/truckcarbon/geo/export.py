"""Export unit tables, with or without their boundaries, to files other tools open."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_path
from truckcarbon.geo.boundaries import boundary_data_version, load_unit_geometries
from truckcarbon.geo.crs import gcj02_to_bd09, gcj02_to_wgs84

METRES_PER_DEGREE = 111_320.0


def unit_geometries(adcodes: list[int], crs: str = "wgs84", simplify_m: float = 0.0) -> list[shapely.Geometry]:
    """Boundaries of units in ``crs``, optionally simplified (tolerance in metres, approximate)."""
    if crs not in ("wgs84", "gcj02", "bd09"):
        raise InputError(f"unknown coordinate system {crs!r}; use 'wgs84', 'gcj02' or 'bd09'")
    geoms = load_unit_geometries(adcodes)
    out = []
    for code in adcodes:
        g = geoms[code]
        if simplify_m > 0:
            g = shapely.simplify(g, simplify_m / METRES_PER_DEGREE, preserve_topology=True)
        if crs == "wgs84":
            g = shapely.transform(g, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
        elif crs == "bd09":
            g = shapely.transform(g, lambda xy: np.column_stack(gcj02_to_bd09(xy[:, 0], xy[:, 1])))
        out.append(g)
    return out


def write_table(table: pa.Table, out: Path, crs: str = "wgs84", simplify_m: float = 0.0) -> None:
    """Write a unit table as CSV, Parquet or GeoJSON (boundaries from the ``city_adcode`` column)."""
    suffix = out.suffix.lower()
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            pacsv.write_csv(table, tmp)
        elif suffix == ".parquet":
            pq.write_table(table, tmp)
        elif suffix in (".geojson", ".json"):
            codes = table["city_adcode"].to_pylist()
            geoms = unit_geometries(codes, crs=crs, simplify_m=simplify_m)
            with tmp.open("w", encoding="utf-8") as f:
                f.write('{"type": "FeatureCollection", ')
                f.write(f'"name": "truckcarbon units ({boundary_data_version()}, {crs})", "features": [\n')
                for i, (props, g) in enumerate(zip(table.to_pylist(), geoms, strict=True)):
                    if i:
                        f.write(",\n")
                    f.write('{"type": "Feature", "properties": ')
                    f.write(json.dumps(props, ensure_ascii=False))
                    f.write(', "geometry": ')
                    f.write(shapely.to_geojson(g))
                    f.write("}")
                f.write("\n]}\n")
        else:
            raise InputError(f"{out}: unsupported output type {suffix!r}; use .csv, .parquet or .geojson")
