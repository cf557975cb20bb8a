"""Building the locator index from the boundary polygons (NumPy and Shapely, with compiled steps).

:func:`build_index` takes the installed unit polygons (GCJ-02), cuts their
edges into short pieces (converted to WGS-84 for a ``wgs84`` index), buckets
them into the border cells of both grid levels (:mod:`truckcarbon.geo.index`),
picks a reference point per cell and resolves which units contain it exactly
with Shapely, and derives the leaves' states and the level-2 grids from their
parent cells (:mod:`truckcarbon.geo._build_steps`).

A ``gcj02`` index holds the polygons as they are. A ``wgs84`` index holds them
after converting every vertex to WGS-84 with the exact inverse of the standard
forward formula, having first cut every edge into pieces no longer than 1/256
degree (:data:`DENSIFY_DEG`, about 430 m); along such a piece the forward
formula bends a straight line by less than 1 cm, so locating a WGS-84 ping in
the converted polygons equals converting the ping to GCJ-02 and locating it in
the original polygons everywhere farther than 1 cm from a border. WGS-84 pings
are therefore located without any per-ping conversion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from truckcarbon.core.errors import IndexBuildError
from truckcarbon.geo._build_steps import choose_refs, fill_subgrids, leaf_states
from truckcarbon.geo.boundaries import boundary_data_version, load_unit_geometries, read_units_index
from truckcarbon.geo.crs import gcj02_to_wgs84
from truckcarbon.geo.index import CRS, L1_PER_DEGREE, SUB, LocatorIndex, parse_crs
from truckcarbon.geo.locate import OUTSIDE_IDX

DENSIFY_DEG: Final = 1.0 / (L1_PER_DEGREE * SUB * 2)
MARGIN_DEG: Final = 1e-8
REF_MIN_DIST_DEG: Final = 1e-6

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


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
    """Border cells of one grid level, packed as the kernels read them (see :mod:`truckcarbon.geo.locate`)."""

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
    out[out == np.iinfo(np.int32).max] = OUTSIDE_IDX
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
    crs = parse_crs(crs)
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
    l1 = np.full(nx1 * ny1, OUTSIDE_IDX, np.int32)
    is_border = np.zeros(nx1 * ny1, bool)
    is_border[c1.cell_id] = True
    free = np.flatnonzero(~is_border)
    fcx = x0 + (free % nx1 + 0.5) * size1
    fcy = y0 + (free // nx1 + 0.5) * size1
    l1[free] = _lowest_unit(free.size, *_containing_pairs(fcx, fcy, geoms))
    l1[c1.cell_id] = -2 - np.arange(c1.n, dtype=np.int32)
    c1i = c1.cell_id % nx1
    c1j = c1.cell_id // nx1
    choose_refs(x0 + c1i * size1, y0 + c1j * size1, size1, c1.hdr, c1.grp, c1.edges, REF_MIN_DIST_DEG, c1.ref)
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
    choose_refs(x0 + li * size2, y0 + lj * size2, size2, c2.hdr, c2.grp, c2.edges, REF_MIN_DIST_DEG, c2.ref)
    leaf_states(parent, c2.ref, c2.hdr, c2.grp, c1.ref, c1.hdr, c1.grp, c1.edges, len(geoms))
    leaf_of = np.full((c1.n, SUB, SUB), -1, np.int64)
    leaf_of[parent, lj % SUB, li % SUB] = np.arange(c2.n)
    l2 = fill_subgrids(np.column_stack([c1i, c1j]), x0, y0, size1, SUB, leaf_of, c1.ref, c1.hdr, c1.grp, c1.edges)
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
