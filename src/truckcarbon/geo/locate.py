"""Compiled point location in the locator index (Numba): the unit of a point, alone or in bulk.

:func:`locate_one` and :func:`cell_and_unit` are the functions other compiled
kernels call for one point (the attribution's, in :mod:`truckcarbon.trajectory`,
writes :func:`cell_and_unit` out and calls :func:`cell_unit` for the border
leaves); :func:`locate_kernel` and :func:`cells_kernel` locate arrays of points
for :class:`truckcarbon.geo.locator.CityLocator`. They all take the index
arrays in the order of :meth:`truckcarbon.geo.index.LocatorIndex.kernel_args`.

Geometry of a border *cell* (see :mod:`truckcarbon.geo.index` for the index
layout): a reference point ``r`` whose containing units are known, the cell's
``base`` unit (a unit containing ``r`` that has no edges in the cell, or -1), and
*groups*: for each unit with edges in the cell, the unit index, a flag "``r`` is
inside this unit", and the unit's edges that touch the cell. The arrays are
packed so that one cell's data are adjacent in memory (the kernels are bound by
memory latency, not arithmetic):

* ``ref``   float64 (cells, 2): reference point x, y;
* ``hdr``   int64 (cells + 1, 2): first group, base unit (last row: sentinel);
* ``grp``   int64 (groups + 1, 3): unit, flag, first edge (last row: sentinel);
* ``edges`` float64 (edges, 4): x0, y0, x1, y1 in canonical orientation.

A point
``p`` of the cell is inside unit ``u`` iff ``flag_u`` XOR (the straight segment
``p-r`` crosses an odd number of ``u``'s edges). The segment never leaves the
(convex) cell, so only the cell's edges matter.

Crossings use half-open predicates (a value of exactly 0 counts as the
non-negative side) on edges stored in canonical orientation (lexicographically
smaller end first). Both copies of a shared border edge then give the same
answer, so a point exactly on a border between units A and B is inside exactly
one of them, and a path through a vertex is counted once.

Where several units contain a point (overlaps; the shipped boundaries have
none), the unit with the lowest index, i.e. the lowest adcode, wins.
"""

from __future__ import annotations

import numba as nb

OUTSIDE_IDX = -1  # unit index meaning "in no unit"
INVALID_IDX = -2  # unit index meaning "invalid coordinates"

# Helpers that take index arrays and allocate nothing: compiled without reference counting and inlined by
# LLVM. Inlined by Numba's IR inliner (``inline="always"``), or called with reference counting, every
# call would count references to the index arrays with atomic instructions on memory shared by every thread
# (a quarter of the attribution kernel's time on one thread, more on two).
array_helper = nb.njit(cache=True, _nrt=False, forceinline=True)  # type: ignore[call-overload]  # _nrt: Numba's own option


@nb.njit(inline="always", cache=True)
def crosses(px, py, rx, ry, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """True if segment p-r crosses edge a-b (half-open rules, canonical edge)."""
    sa = (rx - px) * (ay - py) - (ry - py) * (ax - px)
    sb = (rx - px) * (by - py) - (ry - py) * (bx - px)
    if (sa < 0.0) == (sb < 0.0):
        return False
    tp = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    tr = (bx - ax) * (ry - ay) - (by - ay) * (rx - ax)
    return (tp < 0.0) != (tr < 0.0)


@array_helper
def group_inside(g, px, py, rx, ry, grp, edges):  # type: ignore[no-untyped-def]
    """Is (px, py) inside group g's unit: its flag at the reference (rx, ry) XOR the crossing parity."""
    inside = grp[g, 1] != 0
    for e in range(grp[g, 2], grp[g + 1, 2]):
        if crosses(px, py, rx, ry, edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]):
            inside = not inside
    return inside


@array_helper
def cell_unit(k, px, py, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Lowest unit index containing (px, py) in border cell k, or OUTSIDE_IDX."""
    rx = ref[k, 0]
    ry = ref[k, 1]
    best = hdr[k, 1]
    for g in range(hdr[k, 0], hdr[k + 1, 0]):
        if group_inside(g, px, py, rx, ry, grp, edges):
            c = grp[g, 0]
            if best < 0 or c < best:
                best = c
    return best


@array_helper
def cell_and_unit(x, y, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """(cell, unit index) of a point: :func:`locate_one`'s unit and the borderless grid cell holding it.

    ``cell`` identifies the level-1 cell or leaf that no border touches (>= 0),
    or is -1 when the point is in a border leaf, outside the grid or invalid: two
    points with the same ``cell >= 0`` have no border between them.
    """
    if not (x >= -180.0 and x <= 180.0 and y >= -90.0 and y <= 90.0) or (x == 0.0 and y == 0.0):
        return -1, INVALID_IDX
    fx = (x - x0) * inv1
    fy = (y - y0) * inv1
    if fx < 0.0 or fy < 0.0 or fx >= nx1 or fy >= ny1:
        return -1, OUTSIDE_IDX
    i = int(fx)
    j = int(fy)
    v = l1[j * nx1 + i]
    if v >= OUTSIDE_IDX:
        return j * nx1 + i, v
    inv2 = inv1 * sub
    ii = min(max(int((x - x0) * inv2) - i * sub, 0), sub - 1)
    jj = min(max(int((y - y0) * inv2) - j * sub, 0), sub - 1)
    w = l2[(-2 - v) * sub * sub + jj * sub + ii]
    if w >= OUTSIDE_IDX:
        return nx1 * ny1 + (j * sub + jj) * (nx1 * sub) + i * sub + ii, w
    return -1, cell_unit(-2 - w, x, y, ref, hdr, grp, edges)


@array_helper
def locate_one(x, y, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Unit index of one point (OUTSIDE_IDX / INVALID_IDX markers)."""
    return cell_and_unit(x, y, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)[1]


@nb.njit(cache=True)
def locate_kernel(lon, lat, out, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Unit index of every point (OUTSIDE_IDX / INVALID_IDX markers) into ``out``.

    The loop body is :func:`locate_one` written out with its constants hoisted:
    this is the hottest loop of the system, and the inlined call measured 40%
    slower (``benchmarks/bench_locate.py``).
    """
    inv2 = inv1 * sub
    nsub2 = sub * sub
    for n in range(lon.shape[0]):
        x = lon[n]
        y = lat[n]
        if not (x >= -180.0 and x <= 180.0 and y >= -90.0 and y <= 90.0) or (x == 0.0 and y == 0.0):
            out[n] = INVALID_IDX
            continue
        fx = (x - x0) * inv1
        fy = (y - y0) * inv1
        if fx < 0.0 or fy < 0.0 or fx >= nx1 or fy >= ny1:
            out[n] = OUTSIDE_IDX
            continue
        i = int(fx)
        j = int(fy)
        v = l1[j * nx1 + i]
        if v >= OUTSIDE_IDX:
            out[n] = v
            continue
        ii = min(max(int((x - x0) * inv2) - i * sub, 0), sub - 1)
        jj = min(max(int((y - y0) * inv2) - j * sub, 0), sub - 1)
        w = l2[(-2 - v) * nsub2 + jj * sub + ii]
        if w >= OUTSIDE_IDX:
            out[n] = w
            continue
        out[n] = cell_unit(-2 - w, x, y, ref, hdr, grp, edges)


@nb.njit(cache=True, nogil=True)
def cells_kernel(lon, lat, units, cells, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Unit index and borderless cell (see :func:`cell_and_unit`) of every point, into ``units`` and ``cells``."""
    for n in range(lon.shape[0]):
        c, u = cell_and_unit(lon[n], lat[n], x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        cells[n] = c
        units[n] = u
