"""CityLocator: exact, vectorized longitude/latitude -> prefecture-level unit.

:class:`CityLocator` locates points (:meth:`CityLocator.locate`), splits
straight segments exactly at unit borders (:meth:`CityLocator.split_segments`)
and sums the kilometres of a path per unit (:meth:`CityLocator.path_km`), with
the compiled kernels of :mod:`truckcarbon.geo.locate` and
:mod:`truckcarbon.geo.segments` on an index (:mod:`truckcarbon.geo.index`)
loaded from the cache or built on first use (:mod:`truckcarbon.geo.cache`).

Coordinate systems
------------------
The boundary polygons are GCJ-02 (:mod:`truckcarbon.geo.boundaries`). A
``gcj02`` locator indexes them as they are; a ``wgs84`` locator indexes them
converted to WGS-84 (exact to 1 cm from a border, see
:mod:`truckcarbon.geo.build`), so WGS-84 pings are located without any
per-ping conversion; a ``bd09`` locator converts its input to GCJ-02.

Points exactly on a border and overlaps
---------------------------------------
A point exactly on a border shared by units A and B is assigned to exactly
one of them (deterministically, by the half-open crossing rule); a point
exactly on the coast or national border is in the unit or outside, likewise
deterministically. Where units overlap (the shipped data have no overlaps and
no gaps; a test checks it), the unit with the lowest adcode wins.

Markers
-------
``locate`` returns the 6-digit adcode, :data:`OUTSIDE` (0) for a point in no
unit (sea, neighbouring countries, and by default Hong Kong, Macau and Taiwan)
and :data:`INVALID` (-1) for NaN, infinite or out-of-range coordinates and for
the (0, 0) fix that faulty receivers report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError
from truckcarbon.geo.cache import get_index
from truckcarbon.geo.crs import bd09_to_gcj02
from truckcarbon.geo.index import CRS, index_crs, parse_crs
from truckcarbon.geo.locate import cells_kernel, locate_kernel
from truckcarbon.geo.segments import path_kernel, split_kernel

OUTSIDE: Final = 0
INVALID: Final = -1


def _as_coords(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    try:
        x = np.ascontiguousarray(lon, dtype=np.float64).reshape(-1)
        y = np.ascontiguousarray(lat, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"longitude and latitude must be numeric arrays: {exc}") from exc
    if x.shape != y.shape:
        raise InputError(f"longitude and latitude differ in length ({x.size} vs {y.size})")
    return x, y


@dataclass(frozen=True)
class SegmentSplit:
    """Kilometres of segments per unit: one row per (segment, unit) piece.

    ``city_adcode`` is :data:`OUTSIDE` for pieces outside every unit and
    :data:`INVALID` (with ``distance_km`` NaN) for segments with an invalid end.
    """

    segment: npt.NDArray[np.int64]
    city_adcode: npt.NDArray[np.int32]
    distance_km: npt.NDArray[np.float64]


class CityLocator:
    """Locate longitude/latitude points in China's prefecture-level units.

    Parameters
    ----------
    crs
        ``"wgs84"`` (terminals, default) or ``"gcj02"`` (Chinese web maps).
    mainland_only
        Locate only in mainland units (default); Hong Kong, Macau and Taiwan
        are then :data:`OUTSIDE`.
    cache
        Load/save the index in the cache folder (default); ``False`` builds in memory.
    progress
        Print build progress when the index has to be built.

    Examples
    --------
    >>> loc = CityLocator()
    >>> loc.locate([116.397, 121.47], [39.909, 31.23]).tolist()
    [110100, 310100]
    """

    OUTSIDE: Final = OUTSIDE
    INVALID: Final = INVALID

    def __init__(
        self, crs: CRS | str = CRS.WGS84, *, mainland_only: bool = True, cache: bool = True, progress: bool = False
    ) -> None:
        self.crs = parse_crs(crs)
        self.index = get_index(index_crs(self.crs), mainland_only=mainland_only, cache=cache, progress=progress)
        self._args = self.index.kernel_args()
        codes = self.index.arrays["adcodes"]
        # unit index -> adcode, with slots for the markers at positions -2 and -1.
        self._code_of = np.concatenate([codes, np.array([INVALID, OUTSIDE], np.int32)]).astype(np.int32)

    @property
    def adcodes(self) -> npt.NDArray[np.int32]:
        """Adcodes of the indexed units; a unit index is a position in this array."""
        return np.asarray(self.index.arrays["adcodes"])

    @property
    def kernel_args(self) -> tuple[object, ...]:
        """The index arrays in the order the compiled kernels of :mod:`truckcarbon.geo.locate` and
        :mod:`truckcarbon.geo.segments` take them (:meth:`LocatorIndex.kernel_args`).

        The kernels take coordinates in the index's CRS (``index.crs``): for a
        BD-09 locator, GCJ-02 (convert with :func:`truckcarbon.geo.crs.bd09_to_gcj02`).
        """
        return tuple(self._args)

    def adcodes_of_units(self, units: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """Unit indices (with the -1 outside / -2 invalid markers) to adcodes (0 / -1)."""
        return np.asarray(self._code_of[units], dtype=np.int32)

    @property
    def nbytes(self) -> int:
        """Memory of the index arrays in bytes."""
        return self.index.nbytes

    def _coords(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Input coordinates in the index's CRS (BD-09 converted to GCJ-02)."""
        x, y = _as_coords(lon, lat)
        if self.crs is CRS.BD09:
            x, y = (np.ascontiguousarray(v) for v in bd09_to_gcj02(x, y))
        return x, y

    def locate_units(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Unit indices (positions in :attr:`adcodes`); -1 outside, -2 invalid."""
        x, y = self._coords(lon, lat)
        out = np.empty(x.size, np.int32)
        locate_kernel(x, y, out, *self._args)
        return out

    def locate_cells(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Unit indices (as :meth:`locate_units`) and the borderless grid cell of each point.

        Two points with the same cell ``>= 0`` lie in one grid cell that no
        border touches: the straight line between them stays in their unit.
        Cell -1: the point is in a cell with borders, outside the grid or invalid.
        """
        x, y = self._coords(lon, lat)
        units = np.empty(x.size, np.int32)
        cells = np.empty(x.size, np.int64)
        cells_kernel(x, y, units, cells, *self._args)
        return units, cells

    def locate(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Adcode of the unit containing each point; :data:`OUTSIDE` (0) or :data:`INVALID` (-1)."""
        return self._code_of[self.locate_units(lon, lat)]

    def split_segments(
        self, lon0: npt.ArrayLike, lat0: npt.ArrayLike, lon1: npt.ArrayLike, lat1: npt.ArrayLike
    ) -> SegmentSplit:
        """Split straight segments exactly at unit borders.

        Each segment runs straight (in this locator's longitude/latitude plane)
        from (lon0, lat0) to (lon1, lat1); its length is the haversine
        distance on the mean-radius sphere (R = 6371.0088 km), shared among the
        units it passes in proportion to the part of the line inside each.
        Rows come in segment order and, within a segment, in travel order.
        """
        a_x, a_y = self._coords(lon0, lat0)
        b_x, b_y = self._coords(lon1, lat1)
        if a_x.size != b_x.size:
            raise InputError(f"segment starts and ends differ in length ({a_x.size} vs {b_x.size})")
        seg, unit, dist = split_kernel(a_x, a_y, b_x, b_y, *self._args)
        return SegmentSplit(segment=seg, city_adcode=self._code_of[unit], distance_km=dist)

    def path_km(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        segment_class: npt.ArrayLike,
        n_classes: int = 1,
        segment_km: npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """Kilometres of a path of fixes per unit and segment class, split exactly at borders.

        The path runs straight from each fix to the next (as in
        :meth:`split_segments`, whose sums it equals); segment ``s`` (fix ``s``
        to ``s + 1``) is of class ``segment_class[s]`` in ``0..n_classes-1``.
        Each fix is located once, so this is faster than splitting the
        segments one by one. ``segment_km`` gives the segments' lengths when
        the caller already has them (their haversine lengths, e.g. from an
        odometer of the same path), saving their computation. Returns the adcodes with some distance
        (:data:`OUTSIDE` included) and their ``(units, n_classes)`` kilometres;
        segments with an invalid end count nowhere.
        """
        x, y = self._coords(lon, lat)
        cls = np.ascontiguousarray(segment_class, dtype=np.int64)
        if x.size and cls.size != x.size - 1:
            raise InputError(f"a path of {x.size} fixes has {x.size - 1} segments, got {cls.size} classes")
        if cls.size and (cls.min() < 0 or cls.max() >= n_classes):
            raise InputError(f"segment classes must lie in 0..{n_classes - 1}")
        seg_km = np.empty(0) if segment_km is None else np.ascontiguousarray(segment_km, dtype=np.float64)
        if seg_km.size and seg_km.size != cls.size:
            raise InputError(f"{cls.size} segments but {seg_km.size} segment lengths")
        acc = path_kernel(x, y, cls, seg_km, n_classes, self.adcodes.size, *self._args)[1:]  # row 0: invalid
        used = acc.sum(axis=1) > 0
        codes = np.concatenate([[OUTSIDE], self.adcodes]).astype(np.int32)
        return codes[used], acc[used]
