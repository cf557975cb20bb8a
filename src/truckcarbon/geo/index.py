"""The locator index: its grid layout, the coordinate systems it serves, and the arrays it holds.

Index layout
------------
A two-level grid over China's bounding box:

* level 1: cells of 1/8 degree (:data:`L1_PER_DEGREE`). A cell that no unit
  border touches stores its unit at once (or "outside").
* level 2: each level-1 cell that a border touches is split into 16 x 16
  (:data:`SUB`) leaves of 1/128 degree (about 0.8 km); border-free leaves again
  store their unit.
* a leaf that a border touches keeps the border edges touching it (the unit
  polygons' own full-resolution edges, cut into pieces no longer than half a
  leaf), a reference point whose containing units are known, and answers by
  the crossing parity of the segment from the point to the reference (see
  :mod:`truckcarbon.geo.locate`).

The answer is the same as a point-in-polygon test against the full-resolution
polygons, up to floating-point rounding on the border itself.

An index is built by :func:`truckcarbon.geo.build.build_index` and cached on
disk by :mod:`truckcarbon.geo.cache`; :class:`LocatorIndex` holds its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError

L1_PER_DEGREE: Final = 8
SUB: Final = 16

ARRAYS: Final = ("adcodes", "l1", "l2", "ref", "hdr", "grp", "edges")  # the arrays of an index, by name


class CRS(StrEnum):
    """Coordinate system of input longitudes/latitudes."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"  # Baidu Maps: located on the GCJ-02 index after conversion (:func:`index_crs`)


def parse_crs(crs: CRS | str) -> CRS:
    """``crs`` as a :class:`CRS`; :class:`InputError` naming the accepted values when it is none of them."""
    try:
        return CRS(crs)
    except ValueError:
        raise InputError(f"unknown coordinate system {crs!r}; use 'wgs84', 'gcj02' or 'bd09'") from None


def index_crs(crs: CRS | str) -> CRS:
    """The CRS of the index that serves input in ``crs``: BD-09 input is converted to GCJ-02 first."""
    c = parse_crs(crs)
    return CRS.GCJ02 if c is CRS.BD09 else c


@dataclass(frozen=True)
class LocatorIndex:
    """The arrays of a built index and what they were built from."""

    crs: CRS
    mainland_only: bool
    data_version: str
    x0: float
    y0: float
    nx1: int
    ny1: int
    arrays: dict[str, npt.NDArray[np.generic]] = field(repr=False)

    @property
    def nbytes(self) -> int:
        """Total size of the index arrays in bytes."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def kernel_args(self) -> tuple[object, ...]:
        """The grid and arrays in the order the compiled kernels take them after their own arguments:
        x0, y0, cells per degree, nx1, ny1, SUB, l1, l2, ref, hdr, grp, edges."""
        a = self.arrays
        return (
            self.x0,
            self.y0,
            float(L1_PER_DEGREE),
            self.nx1,
            self.ny1,
            SUB,
            a["l1"],
            a["l2"],
            a["ref"],
            a["hdr"],
            a["grp"],
            a["edges"],
        )
