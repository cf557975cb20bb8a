"""Compiled kernels of the city locator and the segment splitter (Numba).

Geometry of a border *cell* (see :mod:`truckcarbon.geo.locator` for the index
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

import math

import numba as nb
import numpy as np

OUTSIDE_IDX = -1  # unit index meaning "in no unit"
INVALID_IDX = -2  # unit index meaning "invalid coordinates"

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius R1

# Helpers that take index arrays and allocate nothing: compiled without reference counting and inlined by
# LLVM. Inlined by Numba's IR inliner (``inline="always"``), or called with reference counting, every
# call would count references to the index arrays with atomic instructions on memory shared by every thread
# (a quarter of the attribution kernel's time on one thread, more on two).
array_helper = nb.njit(cache=True, _nrt=False, forceinline=True)  # type: ignore[call-overload]  # _nrt: Numba's own option


@nb.njit(inline="always", cache=True)
def _crosses(px, py, rx, ry, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """True if segment p-r crosses edge a-b (half-open rules, canonical edge)."""
    sa = (rx - px) * (ay - py) - (ry - py) * (ax - px)
    sb = (rx - px) * (by - py) - (ry - py) * (bx - px)
    if (sa < 0.0) == (sb < 0.0):
        return False
    tp = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    tr = (bx - ax) * (ry - ay) - (by - ay) * (rx - ax)
    return (tp < 0.0) != (tr < 0.0)


@array_helper
def _group_inside(g, px, py, rx, ry, grp, edges):  # type: ignore[no-untyped-def]
    """Is (px, py) inside group g's unit: its flag at the reference XOR the crossing parity."""
    inside = grp[g, 1] != 0
    for e in range(grp[g, 2], grp[g + 1, 2]):
        if _crosses(px, py, rx, ry, edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]):
            inside = not inside
    return inside


@array_helper
def cell_unit(k, px, py, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Lowest unit index containing (px, py) in border cell k, or OUTSIDE_IDX."""
    rx = ref[k, 0]
    ry = ref[k, 1]
    best = hdr[k, 1]
    for g in range(hdr[k, 0], hdr[k + 1, 0]):
        if _group_inside(g, px, py, rx, ry, grp, edges):
            c = grp[g, 0]
            if best < 0 or c < best:
                best = c
    return best


@array_helper
def _cell_and_unit(x, y, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
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
    return _cell_and_unit(x, y, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)[1]


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


SMALL_RAD = 1e-3  # half-angles below this (steps up to about 12 km) take the series of haversine_cos


@nb.njit(inline="always", cache=True)
def haversine_cos(dp, dl, c0, c1):  # type: ignore[no-untyped-def]
    """The haversine distance (km) of a step of ``dp`` radians of latitude and ``dl`` of longitude
    between latitudes with cosines ``c0`` and ``c1``.

    For half-angles below SMALL_RAD, sin and asin are their Taylor series, cut where the next term is
    below 1e-18 of the value (sin: y^7/5040 against y; asin: 5x^7/112 against x): the haversine to
    the last bit or two, at a fraction of the cost of three library calls.
    """
    a = 0.5 * dp
    b = 0.5 * dl
    if abs(a) < SMALL_RAD and abs(b) < SMALL_RAD:
        a2 = a * a
        b2 = b * b
        sa = a * (1.0 - a2 * (1.0 / 6.0 - a2 * (1.0 / 120.0)))
        sb = b * (1.0 - b2 * (1.0 / 6.0 - b2 * (1.0 / 120.0)))
        x = math.sqrt(sa * sa + c0 * c1 * sb * sb)
        x2 = x * x
        return 2.0 * EARTH_RADIUS_KM * x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0)))
    h = math.sin(a) ** 2 + c0 * c1 * math.sin(b) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@nb.njit(cache=True)
def haversine_km(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Great-circle distance in km on the mean-radius sphere."""
    p0 = math.radians(lat0)
    p1 = math.radians(lat1)
    return haversine_cos(p1 - p0, math.radians(lon1 - lon0), math.cos(p0), math.cos(p1))


STEP_EXACT_KM = 5.0  # step_km computes steps longer than this with the haversine


@nb.njit(inline="always", cache=True)
def cos_lat(x):  # type: ignore[no-untyped-def]
    """cos(x) for a latitude ``x`` in radians (|x| <= pi/2): the Taylor series to x^20, evaluated by
    Horner's rule; the first omitted term is below 2e-17, so the result is within 3e-16 of the library
    cosine (tested) at a third of its cost (no range reduction)."""
    z = x * x
    p = 1.0 / 2432902008176640000.0
    p = p * z - 1.0 / 6402373705728000.0
    p = p * z + 1.0 / 20922789888000.0
    p = p * z - 1.0 / 87178291200.0
    p = p * z + 1.0 / 479001600.0
    p = p * z - 1.0 / 3628800.0
    p = p * z + 1.0 / 40320.0
    p = p * z - 1.0 / 720.0
    p = p * z + 1.0 / 24.0
    p = p * z - 0.5
    return p * z + 1.0


@nb.njit(cache=True, forceinline=True)
def _flat_step(lon0, lat0, lon1, lat1, dx, dy):  # type: ignore[no-untyped-def]
    """The step from its east and north offsets ``dx``, ``dy`` in radians of arc (flat earth) up to
    ``STEP_EXACT_KM``; longer, the haversine of its ends."""
    d = EARTH_RADIUS_KM * math.sqrt(dx * dx + dy * dy)
    if d <= STEP_EXACT_KM:
        return d
    return haversine_km(lon0, lat0, lon1, lat1)


@nb.njit(cache=True, forceinline=True)
def step_km(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Distance in km between two fixes: :func:`haversine_km` at a third of its cost for short steps.

    Steps up to ``STEP_EXACT_KM`` (a fix interval's drive) use the local flat-earth
    (equirectangular, mid-latitude) form, within 1e-7 of the haversine there
    (0.3 mm at 5 km; ``tests/geo/test_segments.py`` checks the bound); longer
    steps (gaps, jumps) take the haversine itself.
    """
    dy = math.radians(lat1 - lat0)
    return _flat_step(
        lon0, lat0, lon1, lat1, math.radians(lon1 - lon0) * cos_lat(math.radians(0.5 * (lat0 + lat1))), dy
    )


@nb.njit(cache=True, forceinline=True)
def step_km_cos(lon0, lat0, lon1, lat1, c0, c1):  # type: ignore[no-untyped-def]
    """:func:`step_km` given the cosines ``c0``, ``c1`` of both latitudes (computed once per fix, in a
    vectorised pass, by :func:`cos_lat`), within 1e-15 of it.

    The mid-latitude's cosine is (c0 + c1) / 2 / cos(dlat / 2), and 1 / cos(dlat / 2) is
    1 + dlat^2 / 8 to within 5 dlat^4 / 384 (below 1e-14 for steps up to ``STEP_EXACT_KM``): no
    cosine per step, whose chain of dependent multiplications held up a sequential loop.
    """
    dy = math.radians(lat1 - lat0)
    return _flat_step(
        lon0, lat0, lon1, lat1, math.radians(lon1 - lon0) * (0.5 * (c0 + c1)) * (1.0 + 0.125 * dy * dy), dy
    )


@nb.njit(cache=True, nogil=True)
def cosines(lat, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = cos of latitude ``lat[i]`` (degrees, within [-90, 90]) by :func:`cos_lat`."""
    for i in range(lat.shape[0]):
        out[i] = cos_lat(math.radians(lat[i]))


@nb.njit(cache=True)
def haversine_many(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Element-wise :func:`haversine_km` of four equal-length arrays."""
    out = np.empty(lon0.shape[0], np.float64)
    for k in range(lon0.shape[0]):
        out[k] = haversine_km(lon0[k], lat0[k], lon1[k], lat1[k])
    return out


@array_helper
def _leaf_at(i2, j2, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """Boundary leaf index of global leaf cell (i2, j2), or -1 when it has no edges."""
    i = i2 // sub
    j = j2 // sub
    if i < 0 or j < 0 or i >= nx1 or j >= ny1:
        return -1
    v = l1[j * nx1 + i]
    if v >= OUTSIDE_IDX:
        return -1
    b = -2 - v
    w = l2[b * sub * sub + (j2 - j * sub) * sub + (i2 - i * sub)]
    if w >= OUTSIDE_IDX:
        return -1
    return -2 - w


@array_helper
def _walk_crossings(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, hdr, grp, edges, buf):  # type: ignore[no-untyped-def]
    """The number of crossings of segment a-b with unit edges; the first ``len(buf)`` of their parameters
    t in (0, 1) go into ``buf``.

    Walks the leaf grid cells the segment passes through (Amanatides-Woo) and
    intersects the segment with the edges stored in each boundary leaf.
    """
    inv2 = inv1 * sub
    u0 = (ax - x0) * inv2
    v0 = (ay - y0) * inv2
    u1 = (bx - x0) * inv2
    v1 = (by - y0) * inv2
    i2 = int(math.floor(u0))
    j2 = int(math.floor(v0))
    i_end = int(math.floor(u1))
    j_end = int(math.floor(v1))
    du = u1 - u0
    dv = v1 - v0
    step_i = 1 if du > 0 else -1
    step_j = 1 if dv > 0 else -1
    big = 1e300
    t_dx = abs(1.0 / du) if du != 0.0 else big
    t_dy = abs(1.0 / dv) if dv != 0.0 else big
    if du > 0:
        t_mx = (math.floor(u0) + 1.0 - u0) * t_dx
    elif du < 0:
        t_mx = (u0 - math.floor(u0)) * t_dx
    else:
        t_mx = big
    if dv > 0:
        t_my = (math.floor(v0) + 1.0 - v0) * t_dy
    elif dv < 0:
        t_my = (v0 - math.floor(v0)) * t_dy
    else:
        t_my = big
    count = 0
    n_steps = abs(i_end - i2) + abs(j_end - j2)
    for _ in range(n_steps + 1):
        k = _leaf_at(i2, j2, nx1, ny1, sub, l1, l2)
        if k >= 0:
            for e in range(grp[hdr[k, 0], 2], grp[hdr[k + 1, 0], 2]):
                ex0 = edges[e, 0]
                ey0 = edges[e, 1]
                ex1 = edges[e, 2]
                ey1 = edges[e, 3]
                if _crosses(ax, ay, bx, by, ex0, ey0, ex1, ey1):
                    ta = (ex1 - ex0) * (ay - ey0) - (ey1 - ey0) * (ax - ex0)
                    tb = (ex1 - ex0) * (by - ey0) - (ey1 - ey0) * (bx - ex0)
                    if count < buf.shape[0]:
                        buf[count] = ta / (ta - tb)
                    count += 1
        if i2 == i_end and j2 == j_end:
            break
        if t_mx < t_my:
            t_mx += t_dx
            i2 += step_i
        else:
            t_my += t_dy
            j2 += step_j
    return count


@array_helper
def _same_borderless_cell(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when both ends lie in one grid cell (level 1 or leaf) that no border touches."""
    i = int(math.floor((ax - x0) * inv1))
    j = int(math.floor((ay - y0) * inv1))
    if i != int(math.floor((bx - x0) * inv1)) or j != int(math.floor((by - y0) * inv1)):
        return False
    if i < 0 or j < 0 or i >= nx1 or j >= ny1:
        return False
    if l1[j * nx1 + i] >= OUTSIDE_IDX:
        return True
    inv2 = inv1 * sub
    i2 = int(math.floor((ax - x0) * inv2))
    j2 = int(math.floor((ay - y0) * inv2))
    if i2 != int(math.floor((bx - x0) * inv2)) or j2 != int(math.floor((by - y0) * inv2)):
        return False
    return _leaf_at(i2, j2, nx1, ny1, sub, l1, l2) < 0


EDGELESS_BOX_LEAVES = 16  # segments whose leaf box is larger are walked


@array_helper
def _edgeless_box(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when no leaf of the segment's bounding box in the leaf grid holds a unit edge.

    The leaves :func:`_walk_crossings` walks lie in that box (same leaf
    coordinates), so the walk would find no crossing: a short step among
    borderless leaves of a border cell skips it with the same result. Boxes of
    more than ``EDGELESS_BOX_LEAVES`` leaves answer False (the walk decides).
    """
    inv2 = inv1 * sub
    ia = int(math.floor((ax - x0) * inv2))
    ib = int(math.floor((bx - x0) * inv2))
    ja = int(math.floor((ay - y0) * inv2))
    jb = int(math.floor((by - y0) * inv2))
    i_lo = min(ia, ib)
    i_hi = max(ia, ib)
    j_lo = min(ja, jb)
    j_hi = max(ja, jb)
    if (i_hi - i_lo + 1) * (j_hi - j_lo + 1) > EDGELESS_BOX_LEAVES:
        return False
    for j2 in range(j_lo, j_hi + 1):
        for i2 in range(i_lo, i_hi + 1):
            if _leaf_at(i2, j2, nx1, ny1, sub, l1, l2) >= 0:
                return False
    return True


@nb.njit(cache=True)
def _reserve(seg, unit, dist, rows, extra):  # type: ignore[no-untyped-def]
    """Grow the three output columns (doubling) so that ``rows + extra`` fit."""
    if rows + extra <= seg.shape[0]:
        return seg, unit, dist
    cap = seg.shape[0] * 2 + extra
    seg2 = np.empty(cap, np.int64)
    unit2 = np.empty(cap, np.int32)
    dist2 = np.empty(cap, np.float64)
    seg2[:rows] = seg[:rows]
    unit2[:rows] = unit[:rows]
    dist2[:rows] = dist[:rows]
    return seg2, unit2, dist2


@array_helper
def no_border_between(ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when no border can separate the ends of segment a-b (units ``ua``, ``ub``): both in one
    borderless cell, or no unit edge in its leaf box. The segment is then one piece in ``ua``: what
    :func:`walk_pieces` would find, without the walk (the usual case)."""
    return (ua == ub and _same_borderless_cell(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2)) or _edgeless_box(
        ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2
    )


@nb.njit(cache=True)
def segment_pieces(  # type: ignore[no-untyped-def]
    ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """Units that segment a-b passes, in travel order, and the share of its parameter length in each.

    ``ua``/``ub`` are the units of the ends. Returns ``(buf, units, fracs, n)``;
    the scratch arrays are grown when needed and must be passed back in.
    """
    if not no_border_between(ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2):
        return walk_pieces(
            ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
    if units.shape[0] < 2:
        units = np.empty(2, np.int32)
        fracs = np.empty(2, np.float64)
    units[0] = ua
    fracs[0] = 1.0
    return buf, units, fracs, 1


@array_helper
def _sort_prefix(a, n):  # type: ignore[no-untyped-def]
    """Sort ``a[:n]`` in place: insertion sort for the few crossings of a step, heapsort for many."""
    if n <= 16:
        for i in range(1, n):
            v = a[i]
            k = i - 1
            while k >= 0 and a[k] > v:
                a[k + 1] = a[k]
                k -= 1
            a[k + 1] = v
        return
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(a, start, n)
    for end in range(n - 1, 0, -1):
        v = a[0]
        a[0] = a[end]
        a[end] = v
        _sift_down(a, 0, end)


@array_helper
def _sift_down(a, root, end):  # type: ignore[no-untyped-def]
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child + 1] > a[child]:
            child += 1
        if a[root] >= a[child]:
            return
        v = a[root]
        a[root] = a[child]
        a[child] = v
        root = child


@array_helper
def walk_pieces_into(  # type: ignore[no-untyped-def]
    ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """:func:`segment_pieces` by walking the leaves the segment crosses, into the given buffers (for callers
    that have tried :func:`no_border_between` themselves).

    Returns the number of pieces in ``units`` and ``fracs``, or ``-1 - c`` when
    the segment's ``c`` crossings do not fit: ``buf`` needs ``c`` places and
    ``units`` and ``fracs`` ``c + 2`` (allocates nothing, so a caller's loop
    counts no references).
    """
    cnt = _walk_crossings(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, hdr, grp, edges, buf)
    if cnt > buf.shape[0] or cnt + 2 > units.shape[0] or cnt + 2 > fracs.shape[0]:
        return -1 - cnt
    if cnt == 0:
        units[0] = ua
        fracs[0] = 1.0
        return 1
    _sort_prefix(buf, cnt)
    n = 0
    prev_t = 0.0
    cur_u = ua
    cur_frac = 0.0
    for q in range(cnt + 1):
        t = buf[q] if q < cnt else 1.0
        t = min(max(t, 0.0), 1.0)
        if t <= prev_t:
            continue
        if q == 0:
            u = ua
        elif q == cnt:
            u = ub
        else:
            tm = 0.5 * (prev_t + t)
            u = locate_one(
                ax + (bx - ax) * tm, ay + (by - ay) * tm, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges
            )
        if u != cur_u:
            if cur_frac > 0.0:
                units[n] = cur_u
                fracs[n] = cur_frac
                n += 1
            cur_u = u
            cur_frac = 0.0
        cur_frac += t - prev_t
        prev_t = t
    units[n] = cur_u
    fracs[n] = cur_frac
    return n + 1


@nb.njit(cache=True)
def walk_pieces(  # type: ignore[no-untyped-def]
    ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """:func:`walk_pieces_into` with the scratch arrays grown when needed; returns ``(buf, units, fracs, n)``."""
    n = walk_pieces_into(
        ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
    )
    if n < 0:
        size = 2 * (-1 - n) + 2
        buf = np.empty(size, np.float64)
        units = np.empty(size, np.int32)
        fracs = np.empty(size, np.float64)
        n = walk_pieces_into(
            ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
    return buf, units, fracs, n


@nb.njit(cache=True)
def split_kernel(lon0, lat0, lon1, lat1, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Split segments at unit borders: returns (segment, unit index, distance_km) rows.

    The segment is the straight line between its ends in the index's
    longitude/latitude plane; its length is the haversine distance, shared
    among units in proportion to the parameter length inside each. Segments
    with an invalid end yield one row with unit INVALID_IDX and distance NaN.
    """
    n = lon0.shape[0]
    seg = np.empty(n + 16, np.int64)
    unit = np.empty(n + 16, np.int32)
    dist = np.empty(n + 16, np.float64)
    rows = 0
    buf = np.empty(64, np.float64)
    units = np.empty(16, np.int32)
    fracs = np.empty(16, np.float64)
    for s in range(n):
        ax = lon0[s]
        ay = lat0[s]
        bx = lon1[s]
        by = lat1[s]
        ua = locate_one(ax, ay, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        ub = locate_one(bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        # Capacity invariant: room for rows + one row per remaining segment (cap starts at n + 16).
        if ua == INVALID_IDX or ub == INVALID_IDX:
            seg[rows] = s
            unit[rows] = INVALID_IDX
            dist[rows] = np.nan
            rows += 1
            continue
        total = haversine_km(ax, ay, bx, by)
        buf, units, fracs, npieces = segment_pieces(
            ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
        seg, unit, dist = _reserve(seg, unit, dist, rows + (n - s), npieces + 1)
        for q in range(npieces):
            seg[rows] = s
            unit[rows] = units[q]
            dist[rows] = total * fracs[q]
            rows += 1
    return seg[:rows], unit[:rows], dist[:rows]


@nb.njit(cache=True, nogil=True)
def cells_kernel(lon, lat, units, cells, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Unit index and borderless cell (see :func:`_cell_and_unit`) of every point, into ``units`` and ``cells``."""
    for n in range(lon.shape[0]):
        c, u = _cell_and_unit(lon[n], lat[n], x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        cells[n] = c
        units[n] = u


@nb.njit(cache=True)
def path_kernel(lon, lat, cls, seg_km, n_cls, n_units, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Kilometres of a polyline per (unit, class), split exactly at unit borders.

    Segment ``s`` runs from fix ``s`` to fix ``s + 1`` and belongs to class
    ``cls[s]`` (0 <= cls < n_cls) and is ``seg_km[s]`` long when ``seg_km`` is
    not empty, else its haversine length. Each fix is located once, with the
    borderless grid cell it lies in: consecutive fixes in one such cell need no
    walk. Returns an ``(n_units + 2, n_cls)`` array whose row ``u + 2`` holds
    unit index ``u`` (row 1: outside every unit, row 0: segments with an
    invalid end, which get no distance). The per-segment arithmetic is
    :func:`split_kernel`'s.
    """
    acc = np.zeros((n_units + 2, n_cls), np.float64)
    n = lon.shape[0]
    if n < 2:
        return acc
    buf = np.empty(64, np.float64)
    units = np.empty(16, np.int32)
    fracs = np.empty(16, np.float64)
    known = seg_km.shape[0] > 0
    cb, ub = _cell_and_unit(lon[0], lat[0], x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
    for s in range(n - 1):
        ax = lon[s]
        ay = lat[s]
        bx = lon[s + 1]
        by = lat[s + 1]
        if bx == ax and by == ay:
            continue  # a parked fix: no distance, same unit
        ca = cb
        ua = ub
        cb, ub = _cell_and_unit(bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        if ua == INVALID_IDX or ub == INVALID_IDX:
            continue
        total = seg_km[s] if known else haversine_km(ax, ay, bx, by)
        c = cls[s]
        if (ca >= 0 and ca == cb) or no_border_between(ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2):
            acc[ua + 2, c] += total  # one piece (see segment_pieces)
            continue
        buf, units, fracs, npieces = walk_pieces(
            ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
        for q in range(npieces):
            acc[units[q] + 2, c] += total * fracs[q]
    return acc


# ---------------------------------------------------------------------------
# Build-time kernels
# ---------------------------------------------------------------------------


@nb.njit(cache=True)
def _seg_point_dist2(px, py, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    dx = bx - ax
    dy = by - ay
    ll = dx * dx + dy * dy
    t = 0.0
    if ll > 0.0:
        t = ((px - ax) * dx + (py - ay) * dy) / ll
        t = min(max(t, 0.0), 1.0)
    qx = ax + t * dx - px
    qy = ay + t * dy - py
    return qx * qx + qy * qy


@nb.njit(cache=True)
def choose_refs(cx0, cy0, size, hdr, grp, edges, min_dist, ref):  # type: ignore[no-untyped-def]
    """Pick, per cell, a reference point inside the cell away from every edge (into ``ref``).

    Candidates form a 7x7 pattern over the cell interior, tried from the centre
    outwards; the first at least ``min_dist`` from all the cell's edges wins,
    else the candidate farthest from them.
    """
    order = np.array([3, 2, 4, 1, 5, 0, 6])
    md2 = min_dist * min_dist
    for k in range(cx0.shape[0]):
        best_d = -1.0
        done = False
        e0 = grp[hdr[k, 0], 2]
        e1 = grp[hdr[k + 1, 0], 2]
        for a in range(7):
            if done:
                break
            for b in range(7):
                qx = cx0[k] + size * (order[a] + 0.5) / 7.0
                qy = cy0[k] + size * (order[b] + 0.5) / 7.0
                d = 1e300
                for e in range(e0, e1):
                    d = min(d, _seg_point_dist2(qx, qy, edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]))
                if d > best_d:
                    best_d = d
                    ref[k, 0] = qx
                    ref[k, 1] = qy
                if d >= md2:
                    done = True
                    break


@nb.njit(cache=True)
def fill_subgrids(l1_cells, x0, y0, size1, sub, leaf_of, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Second-level grids of the border cells of level 1.

    ``leaf_of[b, jj, ii]`` is the border-leaf index of each sub-cell or -1;
    sub-cells without edges take the unit of their centre, resolved exactly
    with the level-1 cell's own geometry.
    """
    nb1 = l1_cells.shape[0]
    out = np.empty(nb1 * sub * sub, np.int32)
    size2 = size1 / sub
    for b in range(nb1):
        cx = x0 + l1_cells[b, 0] * size1
        cy = y0 + l1_cells[b, 1] * size1
        for jj in range(sub):
            for ii in range(sub):
                lf = leaf_of[b, jj, ii]
                if lf >= 0:
                    out[b * sub * sub + jj * sub + ii] = -2 - lf
                else:
                    px = cx + (ii + 0.5) * size2
                    py = cy + (jj + 0.5) * size2
                    out[b * sub * sub + jj * sub + ii] = cell_unit(b, px, py, ref, hdr, grp, edges)
    return out


@nb.njit(cache=True)
def leaf_states(leaf_parent, leaf_ref, leaf_hdr, leaf_grp, ref, hdr, grp, edges, n_units):  # type: ignore[no-untyped-def]
    """Fill the inside-flags of each leaf group and each leaf's base unit, from its parent cell.

    For the leaf reference point ``q`` in parent cell ``b``: unit ``u`` contains
    ``q`` iff ``flag_u(r_b)`` XOR parity of crossings of ``q-r_b`` with ``u``'s
    edges in ``b`` (the parent's base unit contains ``q`` too).
    """
    inside_at = np.zeros(n_units, np.uint8)
    for k in range(leaf_parent.shape[0]):
        b = leaf_parent[k]
        qx = leaf_ref[k, 0]
        qy = leaf_ref[k, 1]
        rx = ref[b, 0]
        ry = ref[b, 1]
        touched = np.empty(hdr[b + 1, 0] - hdr[b, 0] + 1, np.int64)
        nt = 0
        if hdr[b, 1] >= 0:
            inside_at[hdr[b, 1]] = 1
            touched[nt] = hdr[b, 1]
            nt += 1
        for g in range(hdr[b, 0], hdr[b + 1, 0]):
            if _group_inside(g, qx, qy, rx, ry, grp, edges):
                inside_at[grp[g, 0]] = 1
                touched[nt] = grp[g, 0]
                nt += 1
        for g in range(leaf_hdr[k, 0], leaf_hdr[k + 1, 0]):
            c = leaf_grp[g, 0]
            leaf_grp[g, 1] = inside_at[c] == 1
            inside_at[c] = 2  # has edges in the leaf: not a base candidate
        best = -1
        for t in range(nt):
            c = touched[t]
            if inside_at[c] == 1 and (best < 0 or c < best):
                best = c
        leaf_hdr[k, 1] = best
        for t in range(nt):
            inside_at[touched[t]] = 0
        for g in range(leaf_hdr[k, 0], leaf_hdr[k + 1, 0]):
            inside_at[leaf_grp[g, 0]] = 0
