"""CityLocator: exact, vectorized longitude/latitude -> prefecture-level unit.

Index layout
------------
A two-level grid over China's bounding box:

* level 1: cells of 1/8 degree. A cell that no unit border touches stores its
  unit at once (or "outside").
* level 2: each level-1 cell that a border touches is split into 16 x 16 leaves
  of 1/128 degree (about 0.8 km); border-free leaves again store their unit.
* a leaf that a border touches keeps the border edges touching it (the unit
  polygons' own full-resolution edges, cut into pieces no longer than half a
  leaf), a reference point whose containing units are known, and answers by
  the crossing parity of the segment from the point to the reference (see
  :mod:`truckcarbon.geo._kernels`).

The answer is the same as a point-in-polygon test against the full-resolution
polygons, up to floating-point rounding on the border itself.

Coordinate systems
------------------
The boundary polygons are GCJ-02 (:mod:`truckcarbon.geo.boundaries`). A
``gcj02`` locator indexes them as they are. A ``wgs84`` locator indexes them
after converting every vertex to WGS-84 with the exact inverse of the standard
forward formula, having first cut every edge into pieces no longer than 1/256
degree (about 430 m); along such a piece the forward formula bends a straight
line by less than 1 cm, so locating a WGS-84 ping in the converted polygons
equals converting the ping to GCJ-02 and locating it in the original polygons
everywhere farther than 1 cm from a border. WGS-84 pings are therefore located
without any per-ping conversion.

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

The index is built once per (boundary data version, CRS, scope) and cached on
disk (:func:`truckcarbon.core.settings.cache_dir`) as plain ``.npy`` arrays that
are memory-mapped on load, so processes on one machine share one copy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from truckcarbon.core.errors import IndexBuildError, InputError
from truckcarbon.core.settings import cache_dir
from truckcarbon.geo import _kernels as kern
from truckcarbon.geo.boundaries import boundary_data_version, load_unit_geometries, read_units_index
from truckcarbon.geo.crs import bd09_to_gcj02, gcj02_to_wgs84

OUTSIDE: Final = 0
INVALID: Final = -1

INDEX_FORMAT: Final = 2
L1_PER_DEGREE: Final = 8
SUB: Final = 16
DENSIFY_DEG: Final = 1.0 / (L1_PER_DEGREE * SUB * 2)
MARGIN_DEG: Final = 1e-8
REF_MIN_DIST_DEG: Final = 1e-6

_ARRAYS = ("adcodes", "l1", "l2", "ref", "hdr", "grp", "edges")


F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


class CRS(StrEnum):
    """Coordinate system of input longitudes/latitudes."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"  # Baidu Maps: located on the GCJ-02 index after conversion (:func:`index_crs`)


def index_crs(crs: CRS | str) -> CRS:
    """The CRS of the index that serves input in ``crs``: BD-09 input is converted to GCJ-02 first."""
    c = CRS(crs)
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


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def _unit_edges(
    geoms: list[shapely.Geometry],
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int32],
]:
    """All ring edges of all units: a=(ax, ay), b=(bx, by) and the unit index."""
    polys, poly_unit = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    rings, ring_poly = shapely.get_rings(polys, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same = coord_ring[:-1] == coord_ring[1:]
    a = coords[:-1][same]
    b = coords[1:][same]
    unit = poly_unit[ring_poly[coord_ring[:-1][same]]].astype(np.int32)
    return a[:, 0], a[:, 1], b[:, 0], b[:, 1], unit


def _canonical(ax: F64, ay: F64, bx: F64, by: F64) -> tuple[F64, F64, F64, F64]:
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    return np.where(swap, bx, ax), np.where(swap, by, ay), np.where(swap, ax, bx), np.where(swap, ay, by)


def _densify(ax: F64, ay: F64, bx: F64, by: F64, unit: I32, step: float) -> tuple[F64, F64, F64, F64, I32]:
    """Cut edges into pieces no longer than ``step`` degrees (both coordinates).

    Edges are put in canonical orientation first so that the two copies of a
    shared border produce bit-identical pieces.
    """
    ax, ay, bx, by = _canonical(ax, ay, bx, by)
    keep = (ax != bx) | (ay != by)
    ax, ay, bx, by, unit = ax[keep], ay[keep], bx[keep], by[keep], unit[keep]
    dx = bx - ax
    dy = by - ay
    n = np.maximum(1, np.ceil(np.maximum(np.abs(dx), np.abs(dy)) / step)).astype(np.int64)
    idx = np.repeat(np.arange(n.size), n)
    k = np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n)
    nn = n[idx]
    f0 = k / nn
    f1 = (k + 1) / nn
    last = k + 1 == nn
    sx = ax[idx] + dx[idx] * f0
    sy = ay[idx] + dy[idx] * f0
    ex = np.where(last, bx[idx], ax[idx] + dx[idx] * f1)
    ey = np.where(last, by[idx], ay[idx] + dy[idx] * f1)
    return sx, sy, ex, ey, unit[idx]


def _bucket(
    ax: F64, ay: F64, bx: F64, by: F64, x0: float, y0: float, inv: float, nx: int, ny: int
) -> tuple[I64, I64, I64]:
    """(edge, cell i, cell j) for every grid cell an edge's bounding box (plus margin) touches."""
    i0 = np.clip(np.floor((np.minimum(ax, bx) - MARGIN_DEG - x0) * inv), 0, nx - 1).astype(np.int64)
    i1 = np.clip(np.floor((np.maximum(ax, bx) + MARGIN_DEG - x0) * inv), 0, nx - 1).astype(np.int64)
    j0 = np.clip(np.floor((np.minimum(ay, by) - MARGIN_DEG - y0) * inv), 0, ny - 1).astype(np.int64)
    j1 = np.clip(np.floor((np.maximum(ay, by) + MARGIN_DEG - y0) * inv), 0, ny - 1).astype(np.int64)
    w = i1 - i0 + 1
    cnt = w * (j1 - j0 + 1)
    edge = np.repeat(np.arange(cnt.size), cnt)
    local = np.arange(edge.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return edge, i0[edge] + local % w[edge], j0[edge] + local // w[edge]


@dataclass
class _Cells:
    """Border cells of one grid level, packed as the kernels read them (see ``_kernels``)."""

    cell_id: npt.NDArray[np.int64]
    ref: npt.NDArray[np.float64]
    hdr: npt.NDArray[np.int64]
    grp: npt.NDArray[np.int64]
    edges: npt.NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.cell_id.size)

    @property
    def group_cell(self) -> npt.NDArray[np.int64]:
        return np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.hdr[:, 0]))


def _cells(cell_id: I64, unit: I32, edge: I64, ax: F64, ay: F64, bx: F64, by: F64) -> _Cells:
    """Group (cell, unit, edge) triples; reference points, flags and bases are filled later."""
    order = np.lexsort((edge, unit, cell_id))
    cell_id, unit, edge = cell_id[order], unit[order], edge[order]
    n = cell_id.size
    newc = np.ones(n, bool)
    newc[1:] = cell_id[1:] != cell_id[:-1]
    newg = newc.copy()
    newg[1:] |= unit[1:] != unit[:-1]
    gstart = np.flatnonzero(newg)
    cstart = np.flatnonzero(newc)
    hdr = np.full((cstart.size + 1, 2), -1, np.int64)
    hdr[:-1, 0] = np.searchsorted(gstart, cstart)
    hdr[-1, 0] = gstart.size
    grp = np.zeros((gstart.size + 1, 3), np.int64)
    grp[:-1, 0] = unit[gstart]
    grp[-1, 0] = -1
    grp[:-1, 2] = gstart
    grp[-1, 2] = n
    return _Cells(
        cell_id=cell_id[cstart],
        ref=np.zeros((cstart.size, 2), np.float64),
        hdr=hdr,
        grp=grp,
        edges=np.column_stack([ax[edge], ay[edge], bx[edge], by[edge]]),
    )


def _containing_pairs(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], geoms: list[shapely.Geometry]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """(point, unit) for every unit that contains a point (Shapely, exact)."""
    pts: list[npt.NDArray[np.int64]] = []
    units: list[npt.NDArray[np.int32]] = []
    order = np.argsort(x, kind="stable")
    xs = x[order]
    for u, g in enumerate(geoms):
        gx0, gy0, gx1, gy1 = shapely.bounds(g)
        cand = order[np.searchsorted(xs, gx0, side="left") : np.searchsorted(xs, gx1, side="right")]
        cand = cand[(y[cand] >= gy0) & (y[cand] <= gy1)]
        if cand.size == 0:
            continue
        hit = cand[shapely.contains_xy(g, x[cand], y[cand])]
        pts.append(hit.astype(np.int64))
        units.append(np.full(hit.size, u, np.int32))
    if not pts:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    return np.concatenate(pts), np.concatenate(units)


def _lowest_unit(n: int, pts: npt.NDArray[np.int64], units: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    out = np.full(n, np.iinfo(np.int32).max, np.int32)
    np.minimum.at(out, pts, units)
    out[out == np.iinfo(np.int32).max] = kern.OUTSIDE_IDX
    return out


def _resolve_references(c: _Cells, geoms: list[shapely.Geometry]) -> None:
    """Fill group flags and base units of cells from an exact test of their reference points."""
    n_units = len(geoms)
    pts, units = _containing_pairs(c.ref[:, 0], c.ref[:, 1], geoms)
    key = pts * n_units + units
    gkey = c.group_cell * n_units + c.grp[:-1, 0]
    c.grp[:-1, 1] = np.isin(gkey, key)
    not_grouped = ~np.isin(key, gkey)
    c.hdr[:-1, 1] = _lowest_unit(c.n, pts[not_grouped], units[not_grouped])


def build_index(crs: CRS | str = CRS.WGS84, *, mainland_only: bool = True, progress: bool = False) -> LocatorIndex:
    """Build the locator index from the installed boundary data (takes tens of seconds).

    Parameters
    ----------
    crs
        Coordinate system of the points the index will locate.
    mainland_only
        Index only mainland units (default); Hong Kong, Macau and Taiwan are then
        "outside".
    progress
        Print the duration of each build step.
    """
    crs = CRS(crs)
    t_start = time.perf_counter()

    def step(msg: str) -> None:
        if progress:
            print(f"  [{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    units = read_units_index()
    codes = units["adcode"].to_numpy()
    if mainland_only:
        codes = codes[units["province_adcode"].to_numpy() < 710000]
    by_code = load_unit_geometries(codes)
    geoms_gcj = [by_code[int(c)] for c in codes]
    step(f"loaded {len(geoms_gcj)} unit polygons")

    ax, ay, bx, by, unit = _unit_edges(geoms_gcj)
    sx, sy, ex, ey, unit = _densify(ax, ay, bx, by, unit, DENSIFY_DEG)
    if crs is CRS.WGS84:
        sx, sy = gcj02_to_wgs84(sx, sy)
        ex, ey = gcj02_to_wgs84(ex, ey)
        sx, sy, ex, ey = _canonical(sx, sy, ex, ey)
        # The reference states below are computed on these converted polygons,
        # densified exactly as the edges so that both describe the same regions.
        geoms = [
            shapely.transform(
                shapely.segmentize(g, DENSIFY_DEG), lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
            )
            for g in geoms_gcj
        ]
    else:
        geoms = geoms_gcj
    for g in geoms:
        shapely.prepare(g)
    step(f"{sx.size:,} border edges ({crs.value})")

    minx = float(min(sx.min(), ex.min()))
    maxx = float(max(sx.max(), ex.max()))
    miny = float(min(sy.min(), ey.min()))
    maxy = float(max(sy.max(), ey.max()))
    x0 = np.floor(minx * L1_PER_DEGREE) / L1_PER_DEGREE - 1.0 / L1_PER_DEGREE
    y0 = np.floor(miny * L1_PER_DEGREE) / L1_PER_DEGREE - 1.0 / L1_PER_DEGREE
    nx1 = int(np.ceil((maxx - x0) * L1_PER_DEGREE)) + 1
    ny1 = int(np.ceil((maxy - y0) * L1_PER_DEGREE)) + 1
    size1 = 1.0 / L1_PER_DEGREE
    nx2 = nx1 * SUB
    ny2 = ny1 * SUB
    size2 = size1 / SUB

    # Level 1.
    e1, i1, j1 = _bucket(sx, sy, ex, ey, x0, y0, float(L1_PER_DEGREE), nx1, ny1)
    c1 = _cells(j1 * nx1 + i1, unit[e1], e1, sx, sy, ex, ey)
    step(f"level 1: {c1.n:,} border cells of {nx1 * ny1:,}")
    l1 = np.full(nx1 * ny1, kern.OUTSIDE_IDX, np.int32)
    is_border = np.zeros(nx1 * ny1, bool)
    is_border[c1.cell_id] = True
    free = np.flatnonzero(~is_border)
    fcx = x0 + (free % nx1 + 0.5) * size1
    fcy = y0 + (free // nx1 + 0.5) * size1
    l1[free] = _lowest_unit(free.size, *_containing_pairs(fcx, fcy, geoms))
    l1[c1.cell_id] = -2 - np.arange(c1.n, dtype=np.int32)
    c1i = c1.cell_id % nx1
    c1j = c1.cell_id // nx1
    kern.choose_refs(x0 + c1i * size1, y0 + c1j * size1, size1, c1.hdr, c1.grp, c1.edges, REF_MIN_DIST_DEG, c1.ref)
    _resolve_references(c1, geoms)
    step("level 1 resolved")

    # Leaves.
    e2, i2, j2 = _bucket(sx, sy, ex, ey, x0, y0, float(L1_PER_DEGREE * SUB), nx2, ny2)
    c2 = _cells(j2 * nx2 + i2, unit[e2], e2, sx, sy, ex, ey)
    li = c2.cell_id % nx2
    lj = c2.cell_id // nx2
    parent_id = (lj // SUB) * nx1 + li // SUB
    parent = np.searchsorted(c1.cell_id, parent_id)
    if not np.array_equal(c1.cell_id[np.minimum(parent, c1.n - 1)], parent_id):
        raise IndexBuildError("a border leaf lies outside every border cell of level 1")
    step(f"level 2: {c2.n:,} border leaves")
    kern.choose_refs(x0 + li * size2, y0 + lj * size2, size2, c2.hdr, c2.grp, c2.edges, REF_MIN_DIST_DEG, c2.ref)
    kern.leaf_states(parent, c2.ref, c2.hdr, c2.grp, c1.ref, c1.hdr, c1.grp, c1.edges, len(geoms))
    leaf_of = np.full((c1.n, SUB, SUB), -1, np.int64)
    leaf_of[parent, lj % SUB, li % SUB] = np.arange(c2.n)
    l2 = kern.fill_subgrids(np.column_stack([c1i, c1j]), x0, y0, size1, SUB, leaf_of, c1.ref, c1.hdr, c1.grp, c1.edges)
    step("level 2 resolved")

    arrays: dict[str, npt.NDArray[np.generic]] = {
        "adcodes": codes.astype(np.int32),
        "l1": l1,
        "l2": l2,
        "ref": c2.ref,
        "hdr": c2.hdr,
        "grp": c2.grp,
        "edges": c2.edges,
    }
    return LocatorIndex(
        crs=crs,
        mainland_only=mainland_only,
        data_version=boundary_data_version(),
        x0=float(x0),
        y0=float(y0),
        nx1=nx1,
        ny1=ny1,
        arrays=arrays,
    )


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def index_cache_path(crs: CRS, mainland_only: bool, root: Path) -> Path:
    """Folder of the cached index for these settings and the installed boundary data."""
    scope = "mainland" if mainland_only else "all"
    return root / f"locator-{boundary_data_version()}-{crs.value}-{scope}-f{INDEX_FORMAT}-{L1_PER_DEGREE}x{SUB}"


def save_index(index: LocatorIndex, path: Path) -> None:
    """Write the index as a folder of ``.npy`` files; atomic (temporary folder, then rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        for name, arr in index.arrays.items():
            np.save(tmp / f"{name}.npy", arr)
        meta = {
            "crs": index.crs.value,
            "mainland_only": index.mainland_only,
            "data_version": index.data_version,
            "x0": index.x0,
            "y0": index.y0,
            "nx1": index.nx1,
            "ny1": index.ny1,
            "format": INDEX_FORMAT,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "meta.json").exists():  # another process won the race otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_index(path: Path) -> LocatorIndex:
    """Memory-map an index saved by :func:`save_index`."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        arrays = {name: np.asarray(np.load(path / f"{name}.npy", mmap_mode="r")) for name in _ARRAYS}
    except (OSError, ValueError, KeyError) as exc:
        raise IndexBuildError(
            f"locator index cache {path} is unreadable ({exc}); delete the folder to rebuild"
        ) from exc
    if meta.get("format") != INDEX_FORMAT:
        raise IndexBuildError(f"locator index cache {path} has format {meta.get('format')}, expected {INDEX_FORMAT}")
    return LocatorIndex(
        crs=CRS(meta["crs"]),
        mainland_only=bool(meta["mainland_only"]),
        data_version=str(meta["data_version"]),
        x0=float(meta["x0"]),
        y0=float(meta["y0"]),
        nx1=int(meta["nx1"]),
        ny1=int(meta["ny1"]),
        arrays=arrays,
    )


def get_index(
    crs: CRS | str = CRS.WGS84, *, mainland_only: bool = True, cache: bool = True, progress: bool = False
) -> LocatorIndex:
    """The index for ``crs``, loaded from the cache or built (and cached) on first use."""
    crs = CRS(crs)
    if not cache:
        return build_index(crs, mainland_only=mainland_only, progress=progress)
    path = index_cache_path(crs, mainland_only, cache_dir())
    if not (path / "meta.json").exists():
        if progress:
            print(f"building the city locator index ({crs.value}) into {path}", flush=True)
        save_index(build_index(crs, mainland_only=mainland_only, progress=progress), path)
    return load_index(path)


# ---------------------------------------------------------------------------
# The locator
# ---------------------------------------------------------------------------


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
        try:
            self.crs = CRS(crs)
        except ValueError as exc:
            raise InputError(f"unknown coordinate system {crs!r}; use 'wgs84', 'gcj02' or 'bd09'") from exc
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
        """The index arrays in the order the compiled kernels of :mod:`truckcarbon.geo._kernels` take them.

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
        kern.locate_kernel(x, y, out, *self._args)
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
        kern.cells_kernel(x, y, units, cells, *self._args)
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
        seg, unit, dist = kern.split_kernel(a_x, a_y, b_x, b_y, *self._args)
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
        acc = kern.path_kernel(x, y, cls, seg_km, n_classes, self.adcodes.size, *self._args)[1:]  # row 0: invalid
        used = acc.sum(axis=1) > 0
        codes = np.concatenate([[OUTSIDE], self.adcodes]).astype(np.int32)
        return codes[used], acc[used]
