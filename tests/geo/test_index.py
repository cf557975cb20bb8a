"""The index's description: which index serves which CRS, the kernels' argument order, its size."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.geo.index import ARRAYS, CRS, L1_PER_DEGREE, SUB, LocatorIndex, index_crs


def test_bd09_input_is_served_by_the_gcj02_index():
    assert index_crs("bd09") is CRS.GCJ02
    assert index_crs(CRS.GCJ02) is CRS.GCJ02
    assert index_crs("wgs84") is CRS.WGS84
    with pytest.raises(ValueError, match="osgb36"):
        index_crs("osgb36")


def test_kernel_args_are_the_grid_then_the_arrays_in_kernel_order():
    arrays = {name: np.full(k + 1, k, np.int32) for k, name in enumerate(ARRAYS)}
    idx = LocatorIndex(CRS.WGS84, True, "v", 73.5, 3.25, 500, 400, arrays)
    args = idx.kernel_args()
    assert args[:6] == (73.5, 3.25, 8.0, 500, 400, 16) and (L1_PER_DEGREE, SUB) == (8, 16)
    order = ("l1", "l2", "ref", "hdr", "grp", "edges")
    assert len(args) == 12 and all(a is arrays[n] for a, n in zip(args[6:], order, strict=True))
    assert idx.nbytes == 4 * sum(range(1, len(ARRAYS) + 1))  # int32 arrays of 1 .. 7 elements, adcodes included
